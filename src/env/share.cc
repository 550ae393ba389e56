#include "env/share.h"

#include <fmt/format.h>

#include "env/sagemaker.h"
#include "env/slurm.h"
#include "util/error.h"

namespace segscale::env {
namespace {

Share checked(int index, int count, const std::string& source) {
  if (count < 1 || index < 0 || index >= count)
    throw UsageError(fmt::format("share {}/{} from {} is out of range (need 0 <= index < count)", index, count, source));
  return {index, count, source};
}

}  // namespace

Share parse_share(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) throw UsageError("--shard must be I/N, e.g. 0/4, got '" + text + "'");
  const int i = parse_int(text.substr(0, slash), "--shard index");
  const int n = parse_int(text.substr(slash + 1), "--shard count");
  return checked(i, n, "--shard");
}

std::optional<Share> share_from_job(const JobEnvironment& env, std::optional<int> k8s_count) {
  if (env.get("SLURM_ARRAY_TASK_ID") && env.get("SLURM_ARRAY_TASK_COUNT")) {
    const int id = *env.get_int("SLURM_ARRAY_TASK_ID"), count = *env.get_int("SLURM_ARRAY_TASK_COUNT");
    const int min = env.get_int("SLURM_ARRAY_TASK_MIN").value_or(0);
    const int step = env.get_int("SLURM_ARRAY_TASK_STEP").value_or(1);
    // --array=A-B:S numbers tasks A, A+S, ...; a list such as 1,3,7 (Slurm says step 1) does not say where a task
    // stands among the others.
    if (auto max = env.get_int("SLURM_ARRAY_TASK_MAX"); step < 1 || (max && (*max - min) / step + 1 != count))
      throw UsageError(fmt::format("Slurm array: SLURM_ARRAY_TASK_MIN={} MAX={} STEP={} do not number the {} tasks evenly (a list such as "
                                   "--array=1,3,7?): submit --array=0-{} so each task knows its share",
                                   min, max.value_or(-1), step, count, count - 1));
    if ((id - min) % step != 0)
      throw UsageError(fmt::format("Slurm array: SLURM_ARRAY_TASK_ID={} is not MIN={} plus a multiple of STEP={}", id, min, step));
    return checked((id - min) / step, count, "Slurm array");
  }
  // A job's batch script is one process (SLURM_PROCID=0 of the job's SLURM_NTASKS there, but srun starts the tasks):
  // it does the whole store.
  if (env.get("SLURM_PROCID") && env.get("SLURM_NTASKS") && !is_slurm_batch_script(env))
    return checked(*env.get_int("SLURM_PROCID"), *env.get_int("SLURM_NTASKS"), "Slurm tasks");
  if (env.get("OMPI_COMM_WORLD_RANK") && env.get("OMPI_COMM_WORLD_SIZE"))
    return checked(*env.get_int("OMPI_COMM_WORLD_RANK"), *env.get_int("OMPI_COMM_WORLD_SIZE"), "Open MPI");
  if (env.get("JOB_COMPLETION_INDEX")) {
    if (!k8s_count)
      throw UsageError("JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job) but the share count is not: pass --shard-count N (the Job's completions)");
    return checked(*env.get_int("JOB_COMPLETION_INDEX"), *k8s_count, "Kubernetes Indexed Job");
  }
  if (auto sm = sagemaker_hosts(env, SageMakerJob::kProcessing))
    return checked(sm->index, static_cast<int>(sm->hosts.size()), "SageMaker (" + sm->source + ")");
  return std::nullopt;
}

}  // namespace segscale::env
