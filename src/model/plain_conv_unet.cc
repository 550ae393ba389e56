#include "model/plain_conv_unet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>

#include "util/error.h"

namespace segscale::model {
namespace {

constexpr const char* kConv3d = "torch.nn.modules.conv.Conv3d";
constexpr const char* kInstanceNorm3d = "torch.nn.modules.instancenorm.InstanceNorm3d";

// The op names nnU-Net's plans give (`_kw_requires_import`), with the short forms people write.
bool names(const nlohmann::json& j, std::initializer_list<const char*> accepted) {
  if (!j.is_string()) return false;
  for (const char* a : accepted)
    if (j.get<std::string>() == a) return true;
  return false;
}

}  // namespace

PlainConvUNetConfig plain_conv_unet_config_from_json(const nlohmann::json& j) {
  PlainConvUNetConfig c;
  std::optional<int> n_stages;
  nlohmann::json features, kernels, strides, convs, convs_decoder;
  for (const auto& [key, v] : j.items()) {
    const std::string where = fmt::format("plainconvunet: `{}`", key);
    try {
      if (key == "name") continue;
      else if (key == "input_channels") c.input_channels = parse_int(v, where, 1);
      else if (key == "num_classes") c.num_classes = parse_int(v, where, 1);
      else if (key == "n_stages") n_stages = parse_int(v, where, 1);
      else if (key == "features_per_stage") features = v;
      else if (key == "kernel_sizes") kernels = v;
      else if (key == "strides") strides = v;
      else if (key == "n_conv_per_stage") convs = v;
      else if (key == "n_conv_per_stage_decoder") convs_decoder = v;
      else if (key == "conv_bias") c.conv_bias = v.get<bool>();
      else if (key == "deep_supervision") c.deep_supervision = v.get<bool>();
      else if (key == "nonlin_first") {
        if (v.get<bool>()) throw UsageError(where + ": segscale builds conv -> norm -> nonlin only (nonlin_first false)");
      } else if (key == "conv_op") {
        if (!names(v, {kConv3d, "torch.nn.Conv3d", "Conv3d"}))
          throw UsageError(fmt::format("{}: segscale builds the 3D network ({}), not {}", where, kConv3d, v.dump()));
      } else if (key == "norm_op") {
        if (!names(v, {kInstanceNorm3d, "torch.nn.InstanceNorm3d", "InstanceNorm3d"}))
          throw UsageError(fmt::format("{}: segscale builds InstanceNorm3d (nnU-Net's), not {}", where, v.dump()));
      } else if (key == "norm_op_kwargs") {
        c.norm.affine = false;  // torch.nn.InstanceNorm3d's default; nnU-Net's plans say affine true
        const nlohmann::json args = v.is_null() ? nlohmann::json::object() : v;
        for (const auto& [k, a] : args.items()) {
          if (k == "eps") c.norm.eps = a.get<double>();
          else if (k == "affine") c.norm.affine = a.get<bool>();
          else if (k == "momentum") c.norm.momentum = a.get<double>();
          else if (k == "track_running_stats") {
            if (a.get<bool>()) throw UsageError(where + ": track_running_stats is not supported");
          } else throw UsageError(fmt::format("{}: unknown argument `{}` (eps, affine, momentum)", where, k));
        }
      } else if (key == "dropout_op") {
        if (!v.is_null()) throw UsageError(fmt::format("{}: segscale builds the network without dropout (nnU-Net's default), not {}", where, v.dump()));
      } else if (key == "dropout_op_kwargs") {
        continue;
      } else if (key == "nonlin") {
        if (names(v, {"torch.nn.LeakyReLU", "torch.nn.modules.activation.LeakyReLU", "LeakyReLU"})) c.nonlin.kind = ActSpec::Kind::LeakyRelu;
        else if (names(v, {"torch.nn.ReLU", "torch.nn.modules.activation.ReLU", "ReLU"})) c.nonlin.kind = ActSpec::Kind::Relu;
        else throw UsageError(fmt::format("{}: LeakyReLU or ReLU, not {}", where, v.dump()));
      } else if (key == "nonlin_kwargs") {
        const nlohmann::json args = v.is_null() ? nlohmann::json::object() : v;
        for (const auto& [k, a] : args.items()) {
          if (k == "negative_slope") c.nonlin.negative_slope = a.get<double>();
          else if (k == "inplace") c.nonlin.inplace = a.get<bool>();
          else throw UsageError(fmt::format("{}: unknown argument `{}` (negative_slope, inplace)", where, k));
        }
      } else {
        throw UsageError(fmt::format("plainconvunet: unknown setting `{}` (input_channels, num_classes, deep_supervision and the plans' "
                                     "arch_kwargs: n_stages, features_per_stage, conv_op, kernel_sizes, strides, n_conv_per_stage, "
                                     "n_conv_per_stage_decoder, conv_bias, norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs, "
                                     "nonlin, nonlin_kwargs)",
                                     key));
      }
    } catch (const nlohmann::json::exception&) {
      throw UsageError(fmt::format("{} has the wrong type: {}", where, v.dump()));
    }
  }
  if (!n_stages) {
    if (!features.is_array()) throw UsageError("plainconvunet: `n_stages` (or a features_per_stage list) is required");
    n_stages = static_cast<int>(features.size());
  }
  const auto n = static_cast<std::size_t>(*n_stages);
  // DNA's rule: an int is every stage's value; a list must have one entry per stage.
  auto ints = [&](const nlohmann::json& v, const char* key, std::size_t count, int min, int fallback) {
    if (v.is_null()) {
      if (fallback < 0) throw UsageError(fmt::format("plainconvunet: `{}` is required", key));
      return std::vector<int>(count, fallback);
    }
    if (!v.is_array()) return std::vector<int>(count, parse_int(v, fmt::format("plainconvunet: `{}`", key), min));
    std::vector<int> out = parse_ints(v, fmt::format("plainconvunet: `{}`", key), min);
    if (out.size() != count) throw UsageError(fmt::format("plainconvunet: `{}` needs {} entries (one per stage), got {}", key, count, out.size()));
    return out;
  };
  auto vecs = [&](const nlohmann::json& v, const char* key) {
    if (v.is_null()) throw UsageError(fmt::format("plainconvunet: `{}` is required", key));
    std::vector<Vec3> out;
    if (!v.is_array()) return std::vector<Vec3>(n, parse_vec3(v, fmt::format("plainconvunet: `{}`", key)));
    for (std::size_t i = 0; i < v.size(); ++i) out.push_back(parse_vec3(v[i], fmt::format("plainconvunet: `{}[{}]`", key, i)));
    if (out.size() != n) throw UsageError(fmt::format("plainconvunet: `{}` needs {} entries (one per stage), got {}", key, n, out.size()));
    return out;
  };
  c.features_per_stage = ints(features, "features_per_stage", n, 1, -1);
  c.kernel_sizes = vecs(kernels, "kernel_sizes");
  c.strides = vecs(strides, "strides");
  c.n_conv_per_stage = ints(convs, "n_conv_per_stage", n, 1, -1);
  if (n < 2) throw UsageError("plainconvunet: at least 2 stages (n_stages)");
  c.n_conv_per_stage_decoder = ints(convs_decoder, "n_conv_per_stage_decoder", n - 1, 1, -1);
  for (const auto& k : c.kernel_sizes)
    for (auto e : k)
      if (e < 1 || e % 2 == 0) throw UsageError(fmt::format("plainconvunet: kernel sizes must be odd and positive, got {}", e));
  for (const auto& s : c.strides)
    for (auto e : s)
      if (e < 1) throw UsageError(fmt::format("plainconvunet: strides must be positive, got {}", e));
  return c;
}

PlainConvUNetImpl::Stage PlainConvUNetImpl::make_stage(const std::string& prefix, int convs, int in, int out, const Vec3& kernel,
                                                       const Vec3& stride) {
  Stage stage;
  for (int i = 0; i < convs; ++i) {
    const std::string p = fmt::format("{}.convs.{}", prefix, i);
    ConvSpec spec;
    spec.in = i == 0 ? in : out;
    spec.out = out;
    spec.kernel = kernel;
    spec.stride = i == 0 ? stride : Vec3{1, 1, 1};
    spec.padding = {(kernel[0] - 1) / 2, (kernel[1] - 1) / 2, (kernel[2] - 1) / 2};
    spec.bias = config_.conv_bias;
    spec.init = ConvInit::KaimingNormal;
    ConvBlock b{make_conv(*this, p + ".conv", spec), make_norm(*this, p + ".norm", config_.norm, out)};
    // ConvDropoutNormReLU keeps its ops twice: as conv / norm and in all_modules (conv, norm, nonlin).
    add_alias_prefix(p + ".all_modules.0", p + ".conv");
    add_alias_prefix(p + ".all_modules.1", p + ".norm");
    stage.push_back(std::move(b));
  }
  return stage;
}

PlainConvUNetImpl::PlainConvUNetImpl(PlainConvUNetConfig config) : config_(std::move(config)) {
  torch::NoGradGuard no_grad;
  const auto& c = config_;
  const std::size_t n = c.n_stages();
  int in = c.input_channels;
  for (std::size_t s = 0; s < n; ++s) {
    encoder_.push_back(make_stage(fmt::format("encoder.stages.{}.0", s), c.n_conv_per_stage[s], in, c.features_per_stage[s], c.kernel_sizes[s],
                                  c.strides[s]));
    in = c.features_per_stage[s];
  }
  // UNetDecoder keeps the encoder as a child: every encoder tensor is also decoder.encoder.*, all_modules included.
  add_alias_prefix("decoder.encoder", "encoder");
  for (std::size_t s = 0; s < n; ++s)
    for (int i = 0; i < c.n_conv_per_stage[s]; ++i) {
      const std::string p = fmt::format("encoder.stages.{}.0.convs.{}", s, i);
      add_alias_prefix("decoder." + p + ".all_modules.0", p + ".conv");
      add_alias_prefix("decoder." + p + ".all_modules.1", p + ".norm");
    }
  for (std::size_t s = 1; s < n; ++s) {
    const int below = c.features_per_stage[n - s], skip = c.features_per_stage[n - s - 1];
    decoder_.push_back(make_stage(fmt::format("decoder.stages.{}", s - 1), c.n_conv_per_stage_decoder[s - 1], 2 * skip, skip,
                                  c.kernel_sizes[n - s - 1], {1, 1, 1}));
  }
  for (std::size_t s = 1; s < n; ++s) {
    ConvSpec t;
    t.in = c.features_per_stage[n - s];
    t.out = c.features_per_stage[n - s - 1];
    t.kernel = c.strides[n - s];
    t.stride = c.strides[n - s];
    t.padding = {0, 0, 0};
    t.bias = c.conv_bias;
    t.transposed = true;
    t.init = ConvInit::KaimingNormal;
    transpconvs_.push_back(make_conv(*this, fmt::format("decoder.transpconvs.{}", s - 1), t));
  }
  for (std::size_t s = 1; s < n; ++s) {
    ConvSpec h;
    h.in = c.features_per_stage[n - s - 1];
    h.out = c.num_classes;
    h.kernel = {1, 1, 1};
    h.padding = {0, 0, 0};
    h.bias = true;
    h.init = ConvInit::KaimingNormal;
    seg_layers_.push_back(make_conv(*this, fmt::format("decoder.seg_layers.{}", s - 1), h));
  }
}

torch::Tensor PlainConvUNetImpl::run_stage(const Stage& s, torch::Tensor x) const {
  for (const auto& b : s) x = config_.nonlin(b.norm(b.conv(x), is_training()));
  return x;
}

std::vector<torch::Tensor> PlainConvUNetImpl::decode(const torch::Tensor& x, bool all_heads) {
  if (x.dim() != 5 || x.size(1) != config_.input_channels)
    throw Error(fmt::format("plainconvunet: input must be [N, {}, X, Y, Z], got {}", config_.input_channels, fmt::join(x.sizes(), "x")));
  const auto d = divisors();
  for (int i = 0; i < 3; ++i)
    if (x.size(2 + i) % d[static_cast<std::size_t>(i)] != 0)
      throw Error(fmt::format("plainconvunet: spatial sizes must be multiples of {} (the product of the strides), got {}", fmt::join(d, "x"),
                              fmt::join(x.sizes().slice(2), "x")));
  std::vector<torch::Tensor> skips;
  torch::Tensor h = x;
  for (const auto& s : encoder_) skips.push_back(h = run_stage(s, h));
  std::vector<torch::Tensor> heads;
  torch::Tensor low = skips.back();
  for (std::size_t s = 0; s < decoder_.size(); ++s) {
    torch::Tensor up = transpconvs_[s](low);
    low = run_stage(decoder_[s], torch::cat({up, skips[skips.size() - 2 - s]}, 1));
    if (all_heads || s + 1 == decoder_.size()) heads.push_back(seg_layers_[s](low));
  }
  std::reverse(heads.begin(), heads.end());
  return heads;
}

torch::Tensor PlainConvUNetImpl::forward(const torch::Tensor& x) { return decode(x, false).front(); }

std::vector<torch::Tensor> PlainConvUNetImpl::forward_deep_supervision(const torch::Tensor& x) { return decode(x, true); }

std::vector<torch::Tensor> PlainConvUNetImpl::forward_heads(const torch::Tensor& x) {
  return config_.deep_supervision && is_training() ? decode(x, true) : std::vector<torch::Tensor>{forward(x)};
}

nlohmann::json PlainConvUNetImpl::config() const {
  const auto& c = config_;
  nlohmann::json kernels = nlohmann::json::array(), strides = nlohmann::json::array();
  for (const auto& k : c.kernel_sizes) kernels.push_back(k);
  for (const auto& s : c.strides) strides.push_back(s);
  nlohmann::json nonlin_kwargs = {{"inplace", c.nonlin.inplace}};
  if (c.nonlin.kind == ActSpec::Kind::LeakyRelu && c.nonlin.negative_slope != 0.01) nonlin_kwargs["negative_slope"] = c.nonlin.negative_slope;
  return {{"name", "plainconvunet"},
          {"input_channels", c.input_channels},
          {"num_classes", c.num_classes},
          {"deep_supervision", c.deep_supervision},
          {"n_stages", c.n_stages()},
          {"features_per_stage", c.features_per_stage},
          {"conv_op", kConv3d},
          {"kernel_sizes", kernels},
          {"strides", strides},
          {"n_conv_per_stage", c.n_conv_per_stage},
          {"n_conv_per_stage_decoder", c.n_conv_per_stage_decoder},
          {"conv_bias", c.conv_bias},
          {"norm_op", kInstanceNorm3d},
          {"norm_op_kwargs", {{"eps", c.norm.eps}, {"affine", c.norm.affine}}},
          {"dropout_op", nullptr},
          {"dropout_op_kwargs", nullptr},
          {"nonlin", c.nonlin.kind == ActSpec::Kind::LeakyRelu ? "torch.nn.LeakyReLU" : "torch.nn.ReLU"},
          {"nonlin_kwargs", nonlin_kwargs}};
}

std::array<std::int64_t, 3> PlainConvUNetImpl::divisors() const {
  std::array<std::int64_t, 3> d{1, 1, 1};
  for (const auto& s : config_.strides)
    for (std::size_t i = 0; i < 3; ++i) d[i] *= s[i];
  return d;
}

}  // namespace segscale::model
