#pragma once
// A model exported by `segscale export --format torchscript` (MONAI's class, scripted by torch.jit), run through
// torch::jit so that `segscale infer --model FILE.ts` serves what was exported. The run's config.json travels
// inside the file (the extra file segscale_config.json), so nothing else is needed beside it.
#include <filesystem>
#include <optional>

#include <torch/script.h>

#include "model/network.h"

namespace segscale::model {

// The run config embedded in FILE when it is a TorchScript archive written by `segscale export`; nullopt for
// anything else (weights, a checkpoint, another TorchScript file).
std::optional<nlohmann::json> exported_run_config(const std::filesystem::path& file);

class ScriptedNetwork : public Network {
 public:
  // Loads FILE (see exported_run_config); `model_config` is the run config's "model" block, which gives the
  // network's geometry (channels, divisors). Throws Error naming the file when torch::jit cannot load it.
  ScriptedNetwork(const std::filesystem::path& file, nlohmann::json model_config);
  torch::Tensor forward(const torch::Tensor& x) override;
  nlohmann::json config() const override { return config_; }
  std::array<std::int64_t, 3> divisors() const override { return divisors_; }
  int in_channels() const override { return in_channels_; }
  int out_channels() const override { return out_channels_; }
  void to(torch::Device device, bool non_blocking = false) override;
  void train(bool on = true) override;

 private:
  torch::jit::Module module_;
  nlohmann::json config_;
  std::array<std::int64_t, 3> divisors_{1, 1, 1};
  int in_channels_ = 0, out_channels_ = 0;
};

}  // namespace segscale::model
