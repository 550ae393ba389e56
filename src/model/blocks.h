#pragma once
// The layers segscale's MONAI networks (SegResNet, DynUNet) are made of, computed with the same ATen calls as
// torch.nn's modules (so results, autograd and autocast behave as in PyTorch): Conv3d / ConvTranspose3d,
// GroupNorm / InstanceNorm3d / BatchNorm3d, ReLU / LeakyReLU, and MONAI's `norm` / `act` arguments as JSON.
// Layout [N, C, X, Y, Z]. Parameters are registered on a TreeNetwork under MONAI's names.
#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "model/tree_network.h"

namespace segscale::model {

using Vec3 = std::array<std::int64_t, 3>;

// MONAI's normalisation argument: "GROUP" | "INSTANCE" | "BATCH" (any case, as MONAI's factory), or
// [name, {args}] with args num_groups (GROUP only; MONAI's GROUP needs it), affine, eps, momentum (BATCH only).
// Defaults as torch.nn: affine true for GROUP and BATCH, false for INSTANCE; eps 1e-5; momentum 0.1.
// INSTANCE never tracks running statistics; BATCH always does (running_mean, running_var, num_batches_tracked).
struct NormSpec {
  enum class Kind { Group, Instance, Batch };
  Kind kind = Kind::Group;
  int num_groups = 8;
  bool affine = true;
  double eps = 1e-5;
  double momentum = 0.1;
  // "INSTANCE" when every arg is the default, else [NAME, {args that differ; GROUP always has num_groups}].
  nlohmann::json to_json() const;
};
// `where` names the setting in messages ("segresnet: `norm`"). Throws UsageError.
NormSpec parse_norm(const nlohmann::json& j, const std::string& where);

// MONAI's activation argument: "RELU" | "LEAKYRELU" (any case) or [name, {args}] with inplace (no effect on
// results) and negative_slope (LEAKYRELU; default 0.01 as torch.nn.LeakyReLU).
struct ActSpec {
  enum class Kind { Relu, LeakyRelu };
  Kind kind = Kind::Relu;
  double negative_slope = 0.01;
  bool inplace = true;
  nlohmann::json to_json() const;  // [NAME, {"inplace": ..., ("negative_slope": ...)}]
  torch::Tensor operator()(const torch::Tensor& x) const;
};
ActSpec parse_act(const nlohmann::json& j, const std::string& where);

// How a convolution's parameters are first drawn (from torch's global generator).
enum class ConvInit {
  Torch,          // torch.nn's reset_parameters: weight and bias U(+-1/sqrt(fan_in))
  KaimingNormal,  // DynUNet.initialize_weights: weight kaiming_normal_(a=0.01), bias 0
  Icnr,           // MONAI's icnr_init (SubpixelUpsample, scale 2): kaiming_normal_(a=0) per sub-pixel group; bias as Torch
};

struct ConvSpec {
  int in = 1, out = 1;
  Vec3 kernel{3, 3, 3}, stride{1, 1, 1}, padding{1, 1, 1}, output_padding{0, 0, 0};
  bool bias = false;
  bool transposed = false;
  ConvInit init = ConvInit::Torch;
};

struct Conv {
  ConvSpec spec;
  torch::Tensor weight, bias;  // bias undefined without one
  torch::Tensor operator()(const torch::Tensor& x) const;
};
// Registers `prefix`.weight ([out, in, k] or, transposed, [in, out, k]) and `prefix`.bias.
Conv make_conv(TreeNetwork& net, const std::string& prefix, const ConvSpec& spec);

struct Norm {
  NormSpec spec;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  // training: batch statistics, and (BATCH) the running statistics and num_batches_tracked are updated as
  // torch.nn.BatchNorm3d does; otherwise BATCH uses the running statistics.
  torch::Tensor operator()(const torch::Tensor& x, bool training) const;
};
// Registers `prefix`.weight/.bias (affine), and for BATCH the buffers running_mean, running_var, num_batches_tracked.
// Throws UsageError when GROUP's num_groups does not divide `channels`.
Norm make_norm(TreeNetwork& net, const std::string& prefix, const NormSpec& spec, int channels);

// Vec3 from an int (all axes) or a list of 3 ints. Throws UsageError naming `where`.
Vec3 parse_vec3(const nlohmann::json& j, const std::string& where);
// A whole-number setting at least `min` (nlohmann's get<int> would truncate 8.5 to 8), and a list of them.
// Throws UsageError "<where> must be a whole number >= min, got 8.5".
int parse_int(const nlohmann::json& j, const std::string& where, int min);
std::vector<int> parse_ints(const nlohmann::json& j, const std::string& where, int min);
// An int when all three are equal, else the list.
nlohmann::json vec3_json(const Vec3& v);

}  // namespace segscale::model
