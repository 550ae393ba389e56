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

namespace {

// SageMaker's Python SDK JSON-encodes each hyperparameter value into the string ("\"bf16\"", "40"); plain
// strings are taken as they are.
std::string hyperparameter_value(const nlohmann::json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    try {
      auto inner = nlohmann::json::parse(s);
      if (inner.is_string()) return inner.get<std::string>();
    } catch (const nlohmann::json::exception&) {
    }
  }
  return s;
}

int visible_nvidia_gpus() {
  std::error_code ec;
  int n = 0;
  for (fs::directory_iterator it("/proc/driver/nvidia/gpus", ec), end; !ec && it != end; it.increment(ec)) ++n;
  return n;
}

}  // namespace

std::optional<SageMakerTraining> sagemaker_training(const JobEnvironment& env) {
  if (env.sagemaker_root.empty()) return std::nullopt;
  std::error_code ec;
  const fs::path config = env.sagemaker_root / "input" / "config";
  if (!fs::is_regular_file(config / "resourceconfig.json", ec)) return std::nullopt;
  SageMakerTraining t;
  t.hosts = *sagemaker_hosts(env, SageMakerJob::kTraining);
  if (fs::is_regular_file(config / "hyperparameters.json", ec)) {
    const nlohmann::json h = io::read_json_file(config / "hyperparameters.json");
    if (!h.is_object()) throw UsageError((config / "hyperparameters.json").string() + ": expected a JSON object of name: value");
    for (auto it = h.begin(); it != h.end(); ++it) t.hyperparameters[it.key()] = hyperparameter_value(it.value());
  }
  if (fs::is_regular_file(config / "inputdataconfig.json", ec)) {
    const nlohmann::json c = io::read_json_file(config / "inputdataconfig.json");
    if (!c.is_object()) throw UsageError((config / "inputdataconfig.json").string() + ": expected a JSON object of channels");
    for (auto it = c.begin(); it != c.end(); ++it) t.channels[it.key()] = env.sagemaker_root / "input" / "data" / it.key();
  } else {  // no config file: the channel folders themselves
    for (fs::directory_iterator it(env.sagemaker_root / "input" / "data", ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory()) t.channels[it->path().filename().string()] = it->path();
  }
  t.model_dir = env.sagemaker_root / "model";
  t.checkpoint_dir = env.sagemaker_root / "checkpoints";
  t.failure_file = env.sagemaker_root / "output" / "failure";
  t.gpus_per_host = env.get_int("SM_NUM_GPUS").value_or(visible_nvidia_gpus());
  return t;
}

std::optional<std::string> sagemaker_sharded_input(const JobEnvironment& env, const fs::path& path) {
  if (env.sagemaker_root.empty()) return std::nullopt;
  const fs::path file = env.sagemaker_root / "config" / "processingjobconfig.json";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  const nlohmann::json j = io::read_json_file(file);
  if (!j.is_object() || !j.contains("ProcessingInputs")) return std::nullopt;
  if (!j["ProcessingInputs"].is_array()) throw UsageError(file.string() + ": ProcessingInputs is not a list");
  const std::string want = fs::absolute(path).lexically_normal().string();
  for (const auto& in : j["ProcessingInputs"]) {
    const auto s3 = in.value("S3Input", nlohmann::json::object());
    if (s3.value("S3DataDistributionType", "") != "ShardedByS3Key") continue;
    const std::string local = fs::path(s3.value("LocalPath", "")).lexically_normal().string();
    if (!local.empty() && (want == local || want.rfind(local + "/", 0) == 0 || local.rfind(want + "/", 0) == 0))
      return in.value("InputName", local);
  }
  return std::nullopt;
}

std::optional<fs::path> sagemaker_failure_file(const JobEnvironment& env) {
  std::error_code ec;
  if (env.sagemaker_root.empty() || !fs::is_regular_file(sagemaker_resource_config(env, SageMakerJob::kTraining), ec)) return std::nullopt;
  return env.sagemaker_root / "output" / "failure";
}

}  // namespace segscale::env
