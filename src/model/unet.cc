#include "model/unet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "model/blocks.h"
#include "util/error.h"

namespace segscale::model {
namespace {

// A plain container module, so dotted MONAI names become nested libtorch modules ("model.0.conv" ...).
class Node : public torch::nn::Module {
 public:
  Node& child(const std::string& name) {
    for (auto& item : named_children())
      if (item.key() == name) return *std::dynamic_pointer_cast<Node>(item.value());
    return *register_module(name, std::make_shared<Node>());
  }
  torch::Tensor& param(const std::string& name, torch::Tensor t) { return register_parameter(name, std::move(t)); }
};

}  // namespace

int UNetConfig::divisor() const {
  int d = 1;
  for (int s : strides) d *= s;
  return d;
}

void UNetConfig::validate() const {
  if (channels.size() < 2) throw UsageError("UNet needs at least 2 channel levels");
  if (strides.size() != channels.size() - 1)
    throw UsageError(fmt::format("UNet needs one stride per level transition: {} channels, {} strides", channels.size(), strides.size()));
  if (num_res_units < 1) throw UsageError("segscale's UNet needs num_res_units >= 1");
  for (int c : channels)
    if (c < 1) throw UsageError("UNet channels must be positive");
  for (int s : strides)
    if (s < 1) throw UsageError("UNet strides must be positive");
  if (in_channels < 1 || out_channels < 1) throw UsageError("UNet in/out channels must be positive");
}

torch::Tensor& UNetImpl::add(const std::string& name, std::vector<std::int64_t> shape, double bound, double fill, bool constant) {
  // Walk/create the module path, register the leaf parameter.
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1) parts.push_back(name.substr(start, dot - start));
  const std::string leaf = name.substr(start);
  torch::nn::Module* m = this;
  Node* node = nullptr;
  for (const auto& p : parts) {
    if (!node) {
      std::shared_ptr<Node> existing;
      for (auto& item : named_children())
        if (item.key() == p) existing = std::dynamic_pointer_cast<Node>(item.value());
      node = existing ? existing.get() : register_module(p, std::make_shared<Node>()).get();
    } else {
      node = &node->child(p);
    }
    m = node;
  }
  (void)m;
  torch::Tensor t = constant ? torch::full(shape, fill) : torch::empty(shape).uniform_(-bound, bound);
  names_.push_back(name);
  params_[name] = node->param(leaf, t);
  return params_[name];
}

void UNetImpl::build_conv(const std::string& prefix, int in, int out, bool transposed, bool conv_only) {
  // Conv3d weight [out, in, 3,3,3]; ConvTranspose3d weight [in, out, 3,3,3]. PyTorch's fan_in is size(1) * 27.
  std::vector<std::int64_t> shape = transposed ? std::vector<std::int64_t>{in, out, 3, 3, 3} : std::vector<std::int64_t>{out, in, 3, 3, 3};
  const double bound = 1.0 / std::sqrt(static_cast<double>(shape[1] * 27));
  add(prefix + ".conv.weight", shape, bound);
  add(prefix + ".conv.bias", {out}, bound);
  if (!conv_only) add(prefix + ".adn.A.weight", {1}, 0, 0.25, true);
}

void UNetImpl::build_residual_unit(const std::string& prefix, int in, int out, int stride, int subunits, bool last_conv_only) {
  for (int u = 0; u < subunits; ++u)
    build_conv(fmt::format("{}.conv.unit{}", prefix, u), u == 0 ? in : out, out, false, last_conv_only && u == subunits - 1);
  if (stride != 1 || in != out) {
    const int k = stride != 1 ? 3 : 1;
    const double bound = 1.0 / std::sqrt(static_cast<double>(in * k * k * k));
    add(prefix + ".residual.weight", {out, in, k, k, k}, bound);
    add(prefix + ".residual.bias", {out}, bound);
  }
}

void UNetImpl::build_block(const std::string& prefix, int inc, int outc, std::size_t level, bool top) {
  const auto& ch = config_.channels;
  const int c = ch[level];
  const int s = config_.strides[level];
  // MONAI's _create_block: Sequential(down, SkipConnection(sub), up), registered in that order.
  build_residual_unit(prefix + ".0", inc, c, s, config_.num_res_units, false);
  int upc;
  if (level + 2 < ch.size()) {
    build_block(prefix + ".1.submodule", c, c, level + 1, false);
    upc = c * 2;
  } else {
    build_residual_unit(prefix + ".1.submodule", c, ch[level + 1], 1, config_.num_res_units, false);
    upc = c + ch[level + 1];
  }
  build_conv(prefix + ".2.0", upc, outc, true, false);
  build_residual_unit(prefix + ".2.1", outc, outc, 1, 1, top);
}

UNetImpl::UNetImpl(UNetConfig config) : config_(std::move(config)) {
  config_.validate();
  torch::NoGradGuard no_grad;
  build_block("model", config_.in_channels, config_.out_channels, 0, true);
}

torch::Tensor UNetImpl::run_conv(const torch::Tensor& x, const std::string& prefix, int stride, bool transposed, bool conv_only) {
  const auto& w = params_.at(prefix + ".conv.weight");
  const auto& b = params_.at(prefix + ".conv.bias");
  torch::Tensor y = transposed ? torch::conv_transpose3d(x, w, b, stride, 1, stride - 1) : torch::conv3d(x, w, b, stride, 1);
  if (conv_only) return y;
  y = torch::instance_norm(y, {}, {}, {}, {}, /*use_input_stats=*/true, 0.1, 1e-5, /*cudnn_enabled=*/false);
  return torch::prelu(y, params_.at(prefix + ".adn.A.weight"));
}

torch::Tensor UNetImpl::run_residual_unit(const torch::Tensor& x, const std::string& prefix, int stride, int subunits,
                                          bool last_conv_only) {
  torch::Tensor res = x;
  if (params_.count(prefix + ".residual.weight")) {  // stride != 1 or in != out; identity otherwise
    const auto& w = params_.at(prefix + ".residual.weight");
    res = torch::conv3d(x, w, params_.at(prefix + ".residual.bias"), stride, w.size(2) == 3 ? 1 : 0);
  }
  torch::Tensor y = x;
  for (int u = 0; u < subunits; ++u)
    y = run_conv(y, fmt::format("{}.conv.unit{}", prefix, u), u == 0 ? stride : 1, false, last_conv_only && u == subunits - 1);
  return y + res;
}

torch::Tensor UNetImpl::run_block(const torch::Tensor& x, const std::string& prefix, std::size_t level, bool top) {
  const auto& ch = config_.channels;
  const int s = config_.strides[level];
  torch::Tensor down = run_residual_unit(x, prefix + ".0", s, config_.num_res_units, false);
  torch::Tensor sub;
  if (level + 2 < ch.size()) {
    sub = run_block(down, prefix + ".1.submodule", level + 1, false);
  } else {
    sub = run_residual_unit(down, prefix + ".1.submodule", 1, config_.num_res_units, false);
  }
  torch::Tensor cat = torch::cat({down, sub}, 1);  // encoder features first
  torch::Tensor up = run_conv(cat, prefix + ".2.0", s, true, false);
  return run_residual_unit(up, prefix + ".2.1", 1, 1, top);
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x) {
  if (x.dim() != 5 || x.size(1) != config_.in_channels)
    throw Error(fmt::format("UNet input must be [N, {}, X, Y, Z], got {}", config_.in_channels, fmt::join(x.sizes(), "x")));
  const int d = config_.divisor();
  for (int i = 2; i < 5; ++i)
    if (x.size(i) % d != 0)
      throw Error(fmt::format("UNet spatial sizes must be divisible by {} (the product of the strides), got {}x{}x{}", d, x.size(2),
                              x.size(3), x.size(4)));
  return run_block(x, "model", 0, true);
}

nlohmann::json UNetImpl::config() const {
  return {{"name", "unet"},          {"in_channels", config_.in_channels}, {"out_channels", config_.out_channels},
          {"channels", config_.channels}, {"strides", config_.strides},      {"num_res_units", config_.num_res_units}};
}

std::array<std::int64_t, 3> UNetImpl::divisors() const {
  const std::int64_t d = config_.divisor();
  return {d, d, d};
}

UNetConfig unet_config_from_json(const nlohmann::json& j) {
  UNetConfig c;
  for (const auto& [key, value] : j.items()) {
    const std::string where = fmt::format("unet: `{}`", key);
    try {
      if (key == "name") continue;
      else if (key == "in_channels") c.in_channels = parse_int(value, where, 1);
      else if (key == "out_channels") c.out_channels = parse_int(value, where, 1);
      else if (key == "channels") c.channels = parse_ints(value, where, 1);
      else if (key == "strides") c.strides = parse_ints(value, where, 1);
      else if (key == "num_res_units") c.num_res_units = parse_int(value, where, 0);
      else throw UsageError(fmt::format("unet: unknown setting `{}` (in_channels, out_channels, channels, strides, num_res_units)", key));
    } catch (const nlohmann::json::exception&) {
      throw UsageError(fmt::format("unet: setting `{}` has the wrong type: {}", key, value.dump()));
    }
  }
  c.validate();
  return c;
}

}  // namespace segscale::model
