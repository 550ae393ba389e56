#include "prep/share.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "transforms/rng.h"
#include "util/error.h"

extern char** environ;

namespace segscale::prep {
namespace {

int to_int(const std::string& v, const std::string& name) {
  try {
    std::size_t used = 0;
    int x = std::stoi(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw UsageError(fmt::format("environment variable {}='{}' is not an integer", name, v));
  }
}

Share checked(int index, int count, const std::string& source) {
  if (count < 1 || index < 0 || index >= count)
    throw UsageError(fmt::format("share {}/{} from {} is out of range (need 0 <= index < count)", index, count, source));
  return {index, count, source};
}

}  // namespace

Share parse_share(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) throw UsageError("--shard must be I/N, e.g. 0/4, got '" + text + "'");
  int i, n;
  try {
    i = std::stoi(text.substr(0, slash));
    n = std::stoi(text.substr(slash + 1));
  } catch (const std::exception&) {
    throw UsageError("--shard must be I/N with integers, got '" + text + "'");
  }
  return checked(i, n, "--shard");
}

std::optional<Share> share_from_environment(const std::map<std::string, std::string>& env, std::optional<int> k8s_count) {
  auto get = [&](const char* k) -> const std::string* {
    auto it = env.find(k);
    return it == env.end() || it->second.empty() ? nullptr : &it->second;
  };
  if (auto id = get("SLURM_ARRAY_TASK_ID"); id && get("SLURM_ARRAY_TASK_COUNT")) {
    int min = get("SLURM_ARRAY_TASK_MIN") ? to_int(*get("SLURM_ARRAY_TASK_MIN"), "SLURM_ARRAY_TASK_MIN") : 0;
    return checked(to_int(*id, "SLURM_ARRAY_TASK_ID") - min, to_int(*get("SLURM_ARRAY_TASK_COUNT"), "SLURM_ARRAY_TASK_COUNT"), "Slurm array");
  }
  if (auto id = get("SLURM_PROCID"); id && get("SLURM_NTASKS"))
    return checked(to_int(*id, "SLURM_PROCID"), to_int(*get("SLURM_NTASKS"), "SLURM_NTASKS"), "Slurm tasks");
  if (auto id = get("OMPI_COMM_WORLD_RANK"); id && get("OMPI_COMM_WORLD_SIZE"))
    return checked(to_int(*id, "OMPI_COMM_WORLD_RANK"), to_int(*get("OMPI_COMM_WORLD_SIZE"), "OMPI_COMM_WORLD_SIZE"), "Open MPI");
  if (auto id = get("JOB_COMPLETION_INDEX")) {
    if (!k8s_count)
      throw UsageError("JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job) but the share count is not: pass --shard-count N (the Job's completions)");
    return checked(to_int(*id, "JOB_COMPLETION_INDEX"), *k8s_count, "Kubernetes Indexed Job");
  }
  if (auto host = get("SM_CURRENT_HOST"); host && get("SM_HOSTS")) {
    nlohmann::json hosts;
    try {
      hosts = nlohmann::json::parse(*get("SM_HOSTS"));
    } catch (const nlohmann::json::exception&) {
      throw UsageError("SM_HOSTS is not a JSON list of host names: " + *get("SM_HOSTS"));
    }
    if (!hosts.is_array()) throw UsageError("SM_HOSTS is not a JSON list of host names");
    for (std::size_t i = 0; i < hosts.size(); ++i)
      if (hosts[i].is_string() && hosts[i].get<std::string>() == *host) return checked(static_cast<int>(i), static_cast<int>(hosts.size()), "SageMaker");
    throw UsageError("SM_CURRENT_HOST " + *host + " is not in SM_HOSTS " + *get("SM_HOSTS"));
  }
  return std::nullopt;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

int share_of(const std::string& key, int count) {
  return static_cast<int>(transforms::stable_hash(key) % static_cast<std::uint64_t>(count));
}

}  // namespace segscale::prep
