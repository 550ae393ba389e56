#pragma once
// A Network whose parameters and buffers sit in a tree of plain libtorch modules named as MONAI's module tree,
// so named_parameters(), named_buffers() and named_modules() carry MONAI's dotted state_dict names, in MONAI's
// registration order as long as the subclass adds tensors in that order. SegResNet and DynUNet build on it.
#include <string>
#include <utility>
#include <vector>

#include "model/network.h"

namespace segscale::model {

class TreeNetwork : public Network {
 public:
  // Registers `t` under the dotted `name` ("down_layers.1.0.conv.weight"), creating the modules on the path;
  // returns the registered tensor (a handle sharing its storage; Module::to keeps handles valid).
  torch::Tensor add_parameter(const std::string& name, torch::Tensor t);
  torch::Tensor add_buffer(const std::string& name, torch::Tensor t);

  // As torch.nn.Module.to(dtype): floating parameters and buffers change dtype, integer buffers
  // (BatchNorm's num_batches_tracked) keep theirs (libtorch's Module::to would convert them too).
  using torch::nn::Module::to;
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;

  std::vector<std::pair<std::string, std::string>> state_dict_aliases() const override { return aliases_; }

 protected:
  // Declares that MONAI also names every tensor under `prefix` ("input_block") as `alias` ("skip_layers.downsample")
  // plus the rest of its name. Call after the tensors under `prefix` exist; aliases keep the order of the calls.
  void add_alias_prefix(const std::string& alias, const std::string& prefix);

 private:
  torch::nn::Module& node_for(const std::string& name, std::string& leaf);
  void restore_integer_buffers();

  std::vector<std::pair<torch::Tensor, torch::Dtype>> integer_buffers_;
  std::vector<std::pair<std::string, std::string>> aliases_;
};

}  // namespace segscale::model
