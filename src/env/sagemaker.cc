#include "env/sagemaker.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "util/error.h"

namespace segscale::env {
namespace fs = std::filesystem;

namespace {

SageMakerHosts locate(const nlohmann::json& hosts, const std::string& current, const std::string& source) {
  if (!hosts.is_array() || hosts.empty())
    throw UsageError(fmt::format("{}: the hosts are not a non-empty JSON list of host names", source));
  SageMakerHosts h;
  h.source = source;
  h.current_host = current;
  h.index = -1;
  for (const auto& x : hosts) {
    if (!x.is_string()) throw UsageError(fmt::format("{}: host {} is not a string", source, x.dump()));
    if (x.get<std::string>() == current) h.index = static_cast<int>(h.hosts.size());
    h.hosts.push_back(x.get<std::string>());
  }
  if (h.index < 0) throw UsageError(fmt::format("{}: current host {} is not in the hosts {}", source, current, hosts.dump()));
  return h;
}

}  // namespace

fs::path sagemaker_resource_config(const JobEnvironment& env, SageMakerJob job) {
  return job == SageMakerJob::kTraining ? env.sagemaker_root / "input" / "config" / "resourceconfig.json"
                                        : env.sagemaker_root / "config" / "resourceconfig.json";
}

std::optional<SageMakerHosts> sagemaker_hosts(const JobEnvironment& env, SageMakerJob job) {
  if (env.get("SM_HOSTS") && env.get("SM_CURRENT_HOST")) {
    nlohmann::json hosts;
    try {
      hosts = nlohmann::json::parse(*env.get("SM_HOSTS"));
    } catch (const nlohmann::json::exception&) {
      throw UsageError("SM_HOSTS is not a JSON list of host names: " + *env.get("SM_HOSTS"));
    }
    return locate(hosts, *env.get("SM_CURRENT_HOST"), "SM_HOSTS");
  }
  if (env.sagemaker_root.empty()) return std::nullopt;
  const fs::path file = sagemaker_resource_config(env, job);
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  nlohmann::json j = io::read_json_file(file);
  if (!j.is_object() || !j.contains("current_host") || !j["current_host"].is_string() || !j.contains("hosts"))
    throw UsageError(fmt::format("{}: expected {{\"current_host\": ..., \"hosts\": [...]}}", file.string()));
  return locate(j["hosts"], j["current_host"].get<std::string>(), file.string());
}

}  // namespace segscale::env
