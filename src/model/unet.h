#pragma once
// MONAI's UNet (monai.networks.nets.UNet, num_res_units >= 1, kernel 3, PReLU, instance norm, no dropout,
// NDA ordering) with MONAI's parameter names and state_dict order, so weights move between segscale and
// MONAI unchanged. The case study's net: UNet(3, 4, 3, (16,32,64,128,256), (2,2,2,2), num_res_units=2):
// 4,810,074 parameters in 63 tensors. Layout [N, C, X, Y, Z] as MONAI's (spec section 9).
#include <string>
#include <vector>

#include "model/network.h"

namespace segscale::model {

struct UNetConfig {
  int in_channels = 4;
  int out_channels = 3;
  std::vector<int> channels{16, 32, 64, 128, 256};
  std::vector<int> strides{2, 2, 2, 2};
  int num_res_units = 2;
  // Spatial sizes must be divisible by this (the product of the strides).
  int divisor() const;
  // Throws UsageError for inconsistent settings.
  void validate() const;
};

class UNetImpl : public Network {
 public:
  // Parameters initialised as PyTorch's defaults (kaiming_uniform a=sqrt(5), bias U(+-1/sqrt(fan_in)),
  // PReLU 0.25), drawn from torch's global generator: torch::manual_seed(s) first gives a reproducible net.
  explicit UNetImpl(UNetConfig config);
  torch::Tensor forward(const torch::Tensor& x) override;  // raw logits [N, out_channels, X, Y, Z]
  // {"name": "unet", "in_channels", "out_channels", "channels", "strides", "num_res_units"}
  nlohmann::json config() const override;
  std::array<std::int64_t, 3> divisors() const override;
  int in_channels() const override { return config_.in_channels; }
  int out_channels() const override { return config_.out_channels; }
  const UNetConfig& unet_config() const { return config_; }
  // MONAI state_dict names in order.
  const std::vector<std::string>& parameter_names() const { return names_; }

 private:
  torch::Tensor& add(const std::string& name, std::vector<std::int64_t> shape, double bound, double fill = 0.0, bool constant = false);
  void build_block(const std::string& prefix, int inc, int outc, std::size_t level, bool top);
  void build_residual_unit(const std::string& prefix, int in, int out, int stride, int subunits, bool last_conv_only);
  void build_conv(const std::string& prefix, int in, int out, bool transposed, bool conv_only);
  torch::Tensor run_block(const torch::Tensor& x, const std::string& prefix, std::size_t level, bool top);
  torch::Tensor run_residual_unit(const torch::Tensor& x, const std::string& prefix, int stride, int subunits, bool last_conv_only);
  torch::Tensor run_conv(const torch::Tensor& x, const std::string& prefix, int stride, bool transposed, bool conv_only);

  UNetConfig config_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, torch::Tensor> params_;
};
TORCH_MODULE(UNet);

// UNetConfig from a config as UNetImpl::config() writes it (missing keys: the case study's net). Throws UsageError.
UNetConfig unet_config_from_json(const nlohmann::json& j);

}  // namespace segscale::model
