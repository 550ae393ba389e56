#include "env/world.h"

#include <fmt/format.h>

#include <algorithm>

#include "env/sagemaker.h"
#include "env/slurm.h"
#include "util/error.h"

namespace segscale::env {

std::string first_slurm_host(const std::string& nodelist) {
  std::size_t comma = nodelist.find(',');
  std::size_t bracket = nodelist.find('[');
  if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket)) return nodelist.substr(0, comma);
  std::string prefix = nodelist.substr(0, bracket);
  std::size_t end = nodelist.find_first_of(",-]", bracket + 1);
  return prefix + nodelist.substr(bracket + 1, end - bracket - 1);
}

std::optional<World> world_from_job(const JobEnvironment& env) {
  auto master = [&](World& w, const std::string& fallback_host) {
    if (auto a = env.get("MASTER_ADDR")) w.master_addr = *a;
    else if (!fallback_host.empty()) w.master_addr = fallback_host;
    else throw UsageError(fmt::format("{}: MASTER_ADDR is not set (the rank 0 host)", w.source));
    if (auto p = env.get_int("MASTER_PORT")) w.master_port = *p;
  };
  World w;
  if (env.get("RANK") && env.get("WORLD_SIZE")) {
    w.agent_store = env.get("TORCHELASTIC_USE_AGENT_STORE") && *env.get("TORCHELASTIC_USE_AGENT_STORE") == "True";
    w.source = w.agent_store ? "torchrun" : "torchrun variables";
    w.restart_count = env.get_int("TORCHELASTIC_RESTART_COUNT").value_or(0);
    if (w.restart_count < 0) throw UsageError(fmt::format("TORCHELASTIC_RESTART_COUNT={} is negative", w.restart_count));
    if (auto id = env.get("TORCHELASTIC_RUN_ID")) w.run_id = *id;
    w.rank = *env.get_int("RANK");
    w.size = *env.get_int("WORLD_SIZE");
    w.local_rank = env.get_int("LOCAL_RANK").value_or(w.rank);
    w.local_size = env.get_int("LOCAL_WORLD_SIZE").value_or(w.size);
    master(w, w.size == 1 ? "127.0.0.1" : "");
  } else if (env.get("OMPI_COMM_WORLD_RANK") && env.get("OMPI_COMM_WORLD_SIZE")) {
    w.source = "Open MPI";
    w.rank = *env.get_int("OMPI_COMM_WORLD_RANK");
    w.size = *env.get_int("OMPI_COMM_WORLD_SIZE");
    w.local_rank = env.get_int("OMPI_COMM_WORLD_LOCAL_RANK").value_or(0);
    w.local_size = env.get_int("OMPI_COMM_WORLD_LOCAL_SIZE").value_or(1);
    master(w, "");
  } else if (auto slurm = slurm_world(env)) {  // env/slurm.h
    w = *slurm;
  } else if (auto sm = sagemaker_hosts(env, SageMakerJob::kTraining)) {
    w.source = "SageMaker (" + sm->source + ")";
    w.local_size = std::max(1, env.get_int("SM_NUM_GPUS").value_or(1));
    w.local_rank = env.get_int("LOCAL_RANK").value_or(0);
    w.size = static_cast<int>(sm->hosts.size()) * w.local_size;
    w.rank = sm->index * w.local_size + w.local_rank;
    master(w, sm->hosts[0]);
  } else {
    return std::nullopt;
  }
  if (w.size < 1 || w.rank < 0 || w.rank >= w.size)
    throw UsageError(fmt::format("{}: rank {} is outside a world of {}", w.source, w.rank, w.size));
  if (w.local_rank < 0 || w.local_rank >= std::max(w.local_size, 1))
    throw UsageError(fmt::format("{}: local rank {} is outside {} local processes", w.source, w.local_rank, w.local_size));
  if (w.master_port < 1 || w.master_port > 65535) throw UsageError(fmt::format("MASTER_PORT {} is not a port (1-65535)", w.master_port));
  return w;
}

}  // namespace segscale::env
