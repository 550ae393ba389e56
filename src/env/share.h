#pragma once
// Which share of the preprocessing this process does (like SageMaker's ShardedByS3Key), from a flag or from
// whatever scheduler launched it. libtorch-free.
#include <optional>
#include <string>

#include "env/job_environment.h"

namespace segscale::env {

struct Share {
  int index = 0;  // 0-based
  int count = 1;
  std::string source = "default";  // where it came from, for the log
};

// Parses "I/N" (0 <= I < N). Throws UsageError.
Share parse_share(const std::string& text);

// The share from the job, in this order: Slurm array ((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) /
// SLURM_ARRAY_TASK_STEP of SLURM_ARRAY_TASK_COUNT; an --array list that is not a range is refused), Slurm tasks
// started by srun (SLURM_PROCID/SLURM_NTASKS; not in a job's batch script, which is one process), Open MPI
// (OMPI_COMM_WORLD_RANK/SIZE), a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with `k8s_count` shares, which
// Kubernetes does not export), SageMaker (SM_HOSTS/SM_CURRENT_HOST, else a Processing job's
// resourceconfig.json: the current host's position among the hosts). nullopt if none applies. Throws
// UsageError naming the variable or file for inconsistent values.
std::optional<Share> share_from_job(const JobEnvironment& env, std::optional<int> k8s_count);

}  // namespace segscale::env
