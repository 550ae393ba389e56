#include "dist/world.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace segscale::dist {
namespace {

int to_int(const std::string& v, const char* name) {
  try {
    std::size_t used = 0;
    int x = std::stoi(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError(fmt::format("environment variable {}='{}' is not an integer", name, v));
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  std::size_t comma = nodelist.find(',');
  std::size_t bracket = nodelist.find('[');
  if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket)) return nodelist.substr(0, comma);
  std::string prefix = nodelist.substr(0, bracket);
  std::size_t end = nodelist.find_first_of(",-]", bracket + 1);
  return prefix + nodelist.substr(bracket + 1, end - bracket - 1);
}

std::optional<World> world_from_environment(const std::map<std::string, std::string>& env) {
  auto get = [&](const char* k) -> const std::string* {
    auto it = env.find(k);
    return it == env.end() || it->second.empty() ? nullptr : &it->second;
  };
  auto master = [&](World& w, const std::string& fallback_host) {
    if (auto a = get("MASTER_ADDR")) w.master_addr = *a;
    else if (!fallback_host.empty()) w.master_addr = fallback_host;
    else throw UsageError(fmt::format("{}: MASTER_ADDR is not set (the rank 0 host)", w.source));
    if (auto p = get("MASTER_PORT")) w.master_port = to_int(*p, "MASTER_PORT");
  };
  World w;
  if (get("RANK") && get("WORLD_SIZE")) {
    w.source = "torchrun variables";
    w.rank = to_int(*get("RANK"), "RANK");
    w.size = to_int(*get("WORLD_SIZE"), "WORLD_SIZE");
    w.local_rank = get("LOCAL_RANK") ? to_int(*get("LOCAL_RANK"), "LOCAL_RANK") : w.rank;
    w.local_size = get("LOCAL_WORLD_SIZE") ? to_int(*get("LOCAL_WORLD_SIZE"), "LOCAL_WORLD_SIZE") : w.size;
    master(w, w.size == 1 ? "127.0.0.1" : "");
  } else if (get("OMPI_COMM_WORLD_RANK") && get("OMPI_COMM_WORLD_SIZE")) {
    w.source = "Open MPI";
    w.rank = to_int(*get("OMPI_COMM_WORLD_RANK"), "OMPI_COMM_WORLD_RANK");
    w.size = to_int(*get("OMPI_COMM_WORLD_SIZE"), "OMPI_COMM_WORLD_SIZE");
    w.local_rank = get("OMPI_COMM_WORLD_LOCAL_RANK") ? to_int(*get("OMPI_COMM_WORLD_LOCAL_RANK"), "OMPI_COMM_WORLD_LOCAL_RANK") : 0;
    w.local_size = get("OMPI_COMM_WORLD_LOCAL_SIZE") ? to_int(*get("OMPI_COMM_WORLD_LOCAL_SIZE"), "OMPI_COMM_WORLD_LOCAL_SIZE") : 1;
    master(w, "");
  } else if (get("SLURM_PROCID") && get("SLURM_NTASKS")) {
    w.source = "Slurm";
    w.rank = to_int(*get("SLURM_PROCID"), "SLURM_PROCID");
    w.size = to_int(*get("SLURM_NTASKS"), "SLURM_NTASKS");
    w.local_rank = get("SLURM_LOCALID") ? to_int(*get("SLURM_LOCALID"), "SLURM_LOCALID") : 0;
    if (auto t = get("SLURM_NTASKS_PER_NODE")) w.local_size = to_int(t->substr(0, t->find_first_of("(,")), "SLURM_NTASKS_PER_NODE");
    master(w, get("SLURM_JOB_NODELIST") ? first_slurm_host(*get("SLURM_JOB_NODELIST")) : "");
  } else if (get("SM_HOSTS") && get("SM_CURRENT_HOST")) {
    w.source = "SageMaker";
    nlohmann::json hosts;
    try {
      hosts = nlohmann::json::parse(*get("SM_HOSTS"));
    } catch (const nlohmann::json::exception&) {
      throw UsageError("SM_HOSTS is not a JSON list of host names");
    }
    if (!hosts.is_array() || hosts.empty()) throw UsageError("SM_HOSTS is not a JSON list of host names");
    int host = -1;
    for (std::size_t i = 0; i < hosts.size(); ++i)
      if (hosts[i].is_string() && hosts[i].get<std::string>() == *get("SM_CURRENT_HOST")) host = static_cast<int>(i);
    if (host < 0) throw UsageError("SM_CURRENT_HOST is not in SM_HOSTS");
    w.local_size = std::max(1, get("SM_NUM_GPUS") ? to_int(*get("SM_NUM_GPUS"), "SM_NUM_GPUS") : 1);
    w.local_rank = get("LOCAL_RANK") ? to_int(*get("LOCAL_RANK"), "LOCAL_RANK") : 0;
    w.size = static_cast<int>(hosts.size()) * w.local_size;
    w.rank = host * w.local_size + w.local_rank;
    master(w, hosts[0].get<std::string>());
  } else {
    return std::nullopt;
  }
  if (w.size < 1 || w.rank < 0 || w.rank >= w.size)
    throw UsageError(fmt::format("{}: rank {} is outside a world of {}", w.source, w.rank, w.size));
  if (w.local_rank < 0 || w.local_rank >= std::max(w.local_size, 1))
    throw UsageError(fmt::format("{}: local rank {} is outside {} local processes", w.source, w.local_rank, w.local_size));
  if (w.master_port < 1 || w.master_port > 65535) throw UsageError(fmt::format("MASTER_PORT {} is not a port", w.master_port));
  return w;
}

}  // namespace segscale::dist
