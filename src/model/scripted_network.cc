#include "model/scripted_network.h"

#include <fmt/format.h>

#include "io/file.h"
#include "model/torch_save_file.h"
#include "util/error.h"

namespace segscale::model {
namespace {
constexpr const char* kConfigExtra = "segscale_config.json";  // python/segscale/export.py's CONFIG_EXTRA
}

std::optional<nlohmann::json> exported_run_config(const std::filesystem::path& file) {
  std::vector<char> head;
  {
    const io::Bytes b = io::read_file(file);
    head.assign(b.begin(), b.end());
  }
  if (torch_save_kind(head) != TorchSaveKind::kScriptArchive) return std::nullopt;
  torch::jit::ExtraFilesMap extra{{kConfigExtra, ""}};
  try {
    (void)torch::jit::load(file.string(), torch::kCPU, extra);
  } catch (const c10::Error&) {
    return std::nullopt;
  }
  if (extra[kConfigExtra].empty()) return std::nullopt;
  nlohmann::json cfg = nlohmann::json::parse(extra[kConfigExtra], nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object()) throw error_at(file.string(), "its segscale_config.json is not a JSON object");
  return cfg;
}

ScriptedNetwork::ScriptedNetwork(const std::filesystem::path& file, nlohmann::json model_config) : config_(std::move(model_config)) {
  try {
    module_ = torch::jit::load(file.string(), torch::kCPU);
  } catch (const c10::Error& e) {
    throw error_at(file.string(), std::string("torch::jit cannot load it: ") + e.what_without_backtrace());
  }
  module_.eval();
  // The geometry of the network the config names (its weights are the file's; this one is only measured).
  const std::shared_ptr<Network> shape = make_network(config_);
  divisors_ = shape->divisors();
  in_channels_ = shape->in_channels();
  out_channels_ = shape->out_channels();
}

torch::Tensor ScriptedNetwork::forward(const torch::Tensor& x) { return module_.forward({x}).toTensor(); }

void ScriptedNetwork::to(torch::Device device, bool non_blocking) { module_.to(device, non_blocking); }

void ScriptedNetwork::train(bool on) {
  torch::nn::Module::train(on);
  module_.train(on);
}

}  // namespace segscale::model
