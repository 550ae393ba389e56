#pragma once
// Which share of the work this process does, like SageMaker's ShardedByS3Key, from a flag or from whatever
// scheduler launched it.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace segscale::prep {

struct Share {
  int index = 0;  // 0-based
  int count = 1;
  std::string source = "default";  // where it came from, for the log
};

// Parses "I/N" (0 <= I < N). Throws UsageError.
Share parse_share(const std::string& text);

// The share from the environment, in this order: Slurm array (SLURM_ARRAY_TASK_ID within
// SLURM_ARRAY_TASK_COUNT, offset by SLURM_ARRAY_TASK_MIN), Slurm tasks (SLURM_PROCID/SLURM_NTASKS), Open MPI
// (OMPI_COMM_WORLD_RANK/SIZE), a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with `k8s_count` shares, which
// Kubernetes does not export), SageMaker (SM_CURRENT_HOST's position in the JSON list SM_HOSTS). nullopt if
// none is set. Throws UsageError for inconsistent values. `env` maps names to values (tests pass their own).
std::optional<Share> share_from_environment(const std::map<std::string, std::string>& env, std::optional<int> k8s_count);
std::map<std::string, std::string> process_environment();

// The share that owns `key`: stable 64-bit hash of the key, modulo the share count.
int share_of(const std::string& key, int count);

}  // namespace segscale::prep
