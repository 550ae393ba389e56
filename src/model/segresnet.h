#pragma once
// MONAI 1.4.0's SegResNet (monai.networks.nets.SegResNet, spatial_dims 3; Myronenko 2018 without the VAE) with
// MONAI's state_dict names and order, so weights move between segscale and MONAI unchanged. The BraTS tutorial's
// net, SegResNet(blocks_down=[1,2,2,4], blocks_up=[1,1,1], init_filters=16, in_channels=4, out_channels=3,
// dropout_prob=0.2): 4,702,227 parameters. Layout [N, C, X, Y, Z]; spatial sizes multiples of
// 2^(len(blocks_down)-1).
#include <optional>
#include <string>
#include <vector>

#include "model/blocks.h"
#include "model/tree_network.h"

namespace segscale::model {

struct SegResNetConfig {  // MONAI's constructor arguments and defaults (in/out channels: segscale's 4 and 3)
  int init_filters = 8;
  int in_channels = 4;
  int out_channels = 3;
  std::optional<double> dropout_prob;  // Dropout3d after convInit, training mode only
  ActSpec act{ActSpec::Kind::Relu, 0.01, true};
  NormSpec norm{NormSpec::Kind::Group, 8, true, 1e-5, 0.1};
  bool use_conv_final = true;  // false: the output is the last up layer's init_filters channels
  std::vector<int> blocks_down{1, 2, 2, 4};
  std::vector<int> blocks_up{1, 1, 1};
  std::string upsample_mode = "nontrainable";  // "nontrainable" (trilinear x2) | "deconv" | "pixelshuffle"
  // Throws UsageError naming the setting for impossible values.
  void validate() const;
};

class SegResNetImpl : public TreeNetwork {
 public:
  // Parameters as PyTorch's defaults (convolutions U(+-1/sqrt(fan_in)), norms 1/0; the pixelshuffle conv by
  // MONAI's ICNR), drawn from torch's global generator.
  explicit SegResNetImpl(SegResNetConfig config);
  torch::Tensor forward(const torch::Tensor& x) override;  // [N, out_channels, X, Y, Z] logits
  // {"name": "segresnet", "spatial_dims": 3, and every SegResNetConfig field under MONAI's argument name}
  nlohmann::json config() const override;
  std::array<std::int64_t, 3> divisors() const override;
  int in_channels() const override { return config_.in_channels; }
  int out_channels() const override { return config_.use_conv_final ? config_.out_channels : config_.init_filters; }

 private:
  struct ResBlock {
    Norm norm1, norm2;
    Conv conv1, conv2;
  };
  struct Level {  // one entry of down_layers or up_layers/up_samples
    std::optional<Conv> pre_conv;  // down: the stride-2 conv (levels > 0); up: the 1x1 conv before upsampling
    std::optional<Conv> up_conv;   // up: deconv or pixelshuffle's conv_block
    std::vector<ResBlock> blocks;
  };
  ResBlock make_res_block(const std::string& prefix, int channels);
  torch::Tensor run_res_block(const ResBlock& b, const torch::Tensor& x) const;
  torch::Tensor upsample(const Level& level, torch::Tensor x) const;

  SegResNetConfig config_;
  Conv conv_init_;
  std::vector<Level> down_, up_;
  Norm final_norm_;
  Conv final_conv_;
};
TORCH_MODULE(SegResNet);

// SegResNetConfig from a config as SegResNetImpl::config() writes it (missing keys: MONAI's defaults).
// Throws UsageError naming the key for an unknown key, a wrong type or an impossible value.
SegResNetConfig segresnet_config_from_json(const nlohmann::json& j);

}  // namespace segscale::model
