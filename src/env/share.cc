#include "env/share.h"

#include <fmt/format.h>

#include "env/sagemaker.h"
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
    const int min = env.get_int("SLURM_ARRAY_TASK_MIN").value_or(0);
    return checked(*env.get_int("SLURM_ARRAY_TASK_ID") - min, *env.get_int("SLURM_ARRAY_TASK_COUNT"), "Slurm array");
  }
  if (env.get("SLURM_PROCID") && env.get("SLURM_NTASKS"))
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
