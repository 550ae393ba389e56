#pragma once
// MONAI 1.4.0's DynUNet (monai.networks.nets.DynUNet, spatial_dims 3; nnU-Net's architecture) with MONAI's
// state_dict names and order, including the `skip_layers.*` second names MONAI's module tree gives every block
// (state_dict_aliases), so weights move between segscale and MONAI unchanged with strict loading.
// Layout [N, C, X, Y, Z]; spatial sizes multiples of the product of the strides on each axis.
#include <optional>
#include <vector>

#include "model/blocks.h"
#include "model/tree_network.h"

namespace segscale::model {

struct DynUNetConfig {  // MONAI's constructor arguments (in/out channels: segscale's 4 and 3)
  int in_channels = 4;
  int out_channels = 3;
  std::vector<Vec3> kernel_size;           // one per level, at least 3 levels; required (MONAI has no default)
  std::vector<Vec3> strides;               // same length; strides[0] must be 1 (output at the input's size)
  std::vector<Vec3> upsample_kernel_size;  // empty: strides[1:]; otherwise must equal strides[1:]
  std::vector<int> filters;                // empty: MONAI's min(2^(5+i), 320); longer lists are cut as MONAI does
  std::optional<double> dropout;           // nn.Dropout after every convolution, training mode only
  NormSpec norm_name{NormSpec::Kind::Instance, 8, true, 1e-5, 0.1};  // ("INSTANCE", {"affine": True})
  ActSpec act_name{ActSpec::Kind::LeakyRelu, 0.01, true};            // ("leakyrelu", {"inplace": True, "negative_slope": 0.01})
  bool deep_supervision = false;
  int deep_supr_num = 1;  // 1 <= deep_supr_num < len(strides) - 1 when deep_supervision
  bool res_block = false;
  bool trans_bias = false;
  // Fills the defaults (upsample_kernel_size, filters) and throws UsageError naming the setting for impossible values.
  void finish();
};

class DynUNetImpl : public TreeNetwork {
 public:
  // Parameters as MONAI's DynUNet.initialize_weights: convolutions kaiming_normal_(a=0.01) with zero bias,
  // norms 1/0; drawn from torch's global generator. `config` goes through finish().
  explicit DynUNetImpl(DynUNetConfig config);
  torch::Tensor forward(const torch::Tensor& x) override;  // main head [N, out_channels, X, Y, Z] (MONAI in eval mode)
  // Training mode with deep_supervision: MONAI's torch.stack([main, heads (nearest-upsampled)...], dim=1),
  // [N, 1 + deep_supr_num, out_channels, X, Y, Z]; otherwise forward(x).
  torch::Tensor forward_train(const torch::Tensor& x) override;
  // {"name": "dynunet", "spatial_dims": 3, and every DynUNetConfig field under MONAI's argument name}
  nlohmann::json config() const override;
  std::array<std::int64_t, 3> divisors() const override;
  int in_channels() const override { return config_.in_channels; }
  int out_channels() const override { return config_.out_channels; }

 private:
  struct Block {  // UnetBasicBlock / UnetResBlock
    Conv conv1, conv2;
    Norm norm1, norm2;
    std::optional<Conv> conv3;  // res_block with a channel or stride change
    std::optional<Norm> norm3;
    bool res = false;  // UnetResBlock (an up block's conv_block is always a UnetBasicBlock)
  };
  struct UpBlock {
    Conv transp_conv;
    Block conv_block;
  };
  Block make_block(const std::string& prefix, int in, int out, const Vec3& kernel, const Vec3& stride, bool res);
  UpBlock make_up_block(const std::string& prefix, int in, int out, const Vec3& kernel, const Vec3& up_kernel);
  Conv make_out_block(const std::string& prefix, int in);
  torch::Tensor conv(const Conv& c, const torch::Tensor& x) const;  // conv, then dropout when set
  torch::Tensor run_block(const Block& b, const torch::Tensor& x) const;
  // The skip layer at `level` (0 = input block); fills heads[level - 1] when that level has a head.
  torch::Tensor run_level(std::size_t level, const torch::Tensor& x, std::vector<torch::Tensor>* heads) const;
  void check_input(const torch::Tensor& x) const;

  DynUNetConfig config_;
  std::vector<Block> down_;     // input_block, downsamples..., bottleneck (levels 0 .. L-1)
  std::vector<UpBlock> up_;     // by level: up_[i] joins level i+1 into level i (MONAI's upsamples reversed)
  Conv output_;
  std::vector<Conv> heads_;     // deep_supervision_heads: head k sits on level k+1
};
TORCH_MODULE(DynUNet);

// DynUNetConfig from a config as DynUNetImpl::config() writes it. Throws UsageError naming the key for an unknown
// key, a wrong type, a missing kernel_size/strides or an impossible value.
DynUNetConfig dynunet_config_from_json(const nlohmann::json& j);

}  // namespace segscale::model
