#pragma once
// nnU-Net's default network: dynamic-network-architectures 0.4.4's PlainConvUNet (3D), built from the arch_kwargs
// of an nnU-Net plans file, with its state_dict names, including the second names its module tree gives every
// tensor (each block's `all_modules.N` and the decoder's reference `decoder.encoder.*`), so weights move between
// segscale and nnU-Net unchanged with strict loading. Layout [N, C, X, Y, Z] (nnU-Net's axes after its transpose);
// spatial sizes multiples of the product of the strides on each axis.
#include <vector>

#include "model/blocks.h"
#include "model/tree_network.h"

namespace segscale::model {

struct PlainConvUNetConfig {  // PlainConvUNet's constructor arguments (nnU-Net: input_channels, num_classes, arch_kwargs)
  int input_channels = 4;
  int num_classes = 3;
  std::vector<int> features_per_stage;  // one per stage (n_stages)
  std::vector<Vec3> kernel_sizes, strides;
  std::vector<int> n_conv_per_stage, n_conv_per_stage_decoder;  // n_stages and n_stages - 1 entries
  bool conv_bias = true;
  NormSpec norm{NormSpec::Kind::Instance, 8, true, 1e-5, 0.1};  // InstanceNorm3d(eps, affine)
  ActSpec nonlin{ActSpec::Kind::LeakyRelu, 0.01, true};        // LeakyReLU(negative_slope) or ReLU
  bool deep_supervision = false;
  std::size_t n_stages() const { return features_per_stage.size(); }
};

class PlainConvUNetImpl : public TreeNetwork {
 public:
  // Convolutions (and transposed convolutions) drawn as nnU-Net's InitWeights_He(1e-2): kaiming_normal_(a=0.01),
  // bias 0; norms 1 and 0. From torch's global generator.
  explicit PlainConvUNetImpl(PlainConvUNetConfig config);
  torch::Tensor forward(const torch::Tensor& x) override;  // the full-resolution head (nnU-Net with deep_supervision off)
  // nnU-Net's deep-supervision outputs: one head per decoder stage, at that stage's resolution, highest first.
  std::vector<torch::Tensor> forward_deep_supervision(const torch::Tensor& x);
  // Training with deep_supervision: forward_deep_supervision; otherwise {forward(x)}.
  std::vector<torch::Tensor> forward_heads(const torch::Tensor& x) override;
  // {"name": "plainconvunet", "input_channels", "num_classes", "deep_supervision", and the plans' arch_kwargs}
  nlohmann::json config() const override;
  std::array<std::int64_t, 3> divisors() const override;
  int in_channels() const override { return config_.input_channels; }
  int out_channels() const override { return config_.num_classes; }

 private:
  struct ConvBlock {  // ConvDropoutNormReLU
    Conv conv;
    Norm norm;
  };
  using Stage = std::vector<ConvBlock>;  // StackedConvBlocks
  Stage make_stage(const std::string& prefix, int convs, int in, int out, const Vec3& kernel, const Vec3& stride);
  torch::Tensor run_stage(const Stage& s, torch::Tensor x) const;
  std::vector<torch::Tensor> decode(const torch::Tensor& x, bool all_heads);

  PlainConvUNetConfig config_;
  std::vector<Stage> encoder_, decoder_;
  std::vector<Conv> transpconvs_, seg_layers_;
};
TORCH_MODULE(PlainConvUNet);

// PlainConvUNetConfig from a config as PlainConvUNetImpl::config() writes it, or from a plans file's arch_kwargs
// plus input_channels and num_classes. Throws UsageError naming the key for an unknown key, a wrong type, an op
// segscale does not build (2D convolutions, another norm, dropout) or an impossible value.
PlainConvUNetConfig plain_conv_unet_config_from_json(const nlohmann::json& j);

}  // namespace segscale::model
