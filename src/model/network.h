#pragma once
// The seam between the trainer (and infer, bench, the Python package) and the networks segscale builds.
// Every network is a torch::nn::Module whose named_parameters() and named_buffers() carry MONAI's state_dict
// names (dotted, in MONAI's order), so `save_weights` writes what `torch.load` + `Net(...).load_state_dict`
// accept and a MONAI state dict loads back. One file per network in src/model/ (unet, segresnet, dynunet);
// this header is all the trainer sees of them.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/torch_compat.h"

namespace segscale::model {

class Network : public torch::nn::Module {
 public:
  ~Network() override = default;
  // Logits [N, out_channels, X, Y, Z] at the input's resolution (the main head only; eval and infer use this).
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // What the training loss sees. A deep-supervised net in training mode returns MONAI DynUNet's stacked heads
  // [N, 1 + deep_supr_num, out_channels, X, Y, Z] (each head upsampled to the input size, main head first);
  // every other net returns forward(x). Loss code tells the two apart by dim() (6 vs 5).
  virtual torch::Tensor forward_train(const torch::Tensor& x) { return forward(x); }
  // What the training loss sees, as a list: nnU-Net's deep supervision gives one head per decoder stage at that
  // stage's resolution, highest first (PlainConvUNet with deep_supervision, in training mode); every other net
  // gives {forward_train(x)}.
  virtual std::vector<torch::Tensor> forward_heads(const torch::Tensor& x) { return {forward_train(x)}; }
  // The network's settings as MONAI's constructor arguments plus {"name": "unet" | "segresnet" | "dynunet"};
  // make_network(config()) rebuilds the same architecture (config.json records it).
  virtual nlohmann::json config() const = 0;
  // Spatial sizes a forward pass accepts must be multiples of these (per axis X, Y, Z).
  virtual std::array<std::int64_t, 3> divisors() const = 0;
  virtual int in_channels() const = 0;
  virtual int out_channels() const = 0;
  // Further state_dict names MONAI's module tree gives to tensors already named above, as (alias, name) pairs
  // in MONAI's state_dict order: DynUNet registers its blocks twice (input_block.* is also
  // skip_layers.downsample.*). save_weights writes them after the parameters and buffers, so MONAI's strict
  // load_state_dict accepts the file; load_weights accepts them. Not parameters: parameters() stays unique.
  virtual std::vector<std::pair<std::string, std::string>> state_dict_aliases() const { return {}; }
};

// Builds the network a config names (as Network::config() writes it; missing keys take MONAI's defaults for
// that network, except in/out channels which default to 4 and 3). Parameters are initialised as the network's
// MONAI/PyTorch initialisation, drawn from torch's global generator (torch::manual_seed first for a reproducible
// net). Throws UsageError naming the key for an unknown name, an unknown key or an impossible value.
std::shared_ptr<Network> make_network(const nlohmann::json& config);

// The names make_network accepts, for messages and --help.
const std::vector<std::string>& network_names();

// Total number of scalar parameters (buffers excluded, as MONAI's counts).
std::int64_t parameter_count(torch::nn::Module& m);

}  // namespace segscale::model
