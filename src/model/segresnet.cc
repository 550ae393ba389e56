#include "model/segresnet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/error.h"

namespace segscale::model {
namespace {

// monai.networks.blocks.segresnet_block.get_conv_layer: Convolution(conv_only=True), "same" padding.
ConvSpec conv_spec(int in, int out, std::int64_t kernel, std::int64_t stride = 1, bool bias = false) {
  ConvSpec s;
  s.in = in;
  s.out = out;
  s.kernel = {kernel, kernel, kernel};
  s.stride = {stride, stride, stride};
  const std::int64_t pad = (kernel - 1) / 2;
  s.padding = {pad, pad, pad};
  s.bias = bias;
  return s;
}

}  // namespace

void SegResNetConfig::validate() const {
  if (init_filters < 1) throw UsageError(fmt::format("segresnet: `init_filters` must be positive, got {}", init_filters));
  if (in_channels < 1) throw UsageError(fmt::format("segresnet: `in_channels` must be positive, got {}", in_channels));
  if (out_channels < 1) throw UsageError(fmt::format("segresnet: `out_channels` must be positive, got {}", out_channels));
  if (dropout_prob && !(*dropout_prob >= 0 && *dropout_prob <= 1))
    throw UsageError(fmt::format("segresnet: `dropout_prob` must be in [0, 1] or null, got {}", *dropout_prob));
  if (blocks_down.empty()) throw UsageError("segresnet: `blocks_down` needs at least one level");
  for (int b : blocks_down)
    if (b < 0) throw UsageError(fmt::format("segresnet: `blocks_down` counts must be >= 0, got [{}]", fmt::join(blocks_down, ", ")));
  for (int b : blocks_up)
    if (b < 0) throw UsageError(fmt::format("segresnet: `blocks_up` counts must be >= 0, got [{}]", fmt::join(blocks_up, ", ")));
  if (blocks_up.size() + 1 != blocks_down.size())
    throw UsageError(fmt::format("segresnet: `blocks_up` needs one entry fewer than `blocks_down` ({} down levels, {} up)",
                                 blocks_down.size(), blocks_up.size()));
  if (blocks_down.size() > 8) throw UsageError("segresnet: `blocks_down` has more than 8 levels");
  if (upsample_mode != "nontrainable" && upsample_mode != "deconv" && upsample_mode != "pixelshuffle")
    throw UsageError(fmt::format("segresnet: `upsample_mode` must be nontrainable, deconv or pixelshuffle, got `{}`", upsample_mode));
  if (norm.kind == NormSpec::Kind::Group && init_filters % norm.num_groups != 0)
    throw UsageError(fmt::format("segresnet: `norm` GROUP num_groups {} must divide `init_filters` {}", norm.num_groups, init_filters));
}

SegResNetImpl::ResBlock SegResNetImpl::make_res_block(const std::string& prefix, int c) {
  // ResBlock registers norm1, norm2, act, conv1, conv2.
  Norm n1 = make_norm(*this, prefix + ".norm1", config_.norm, c);
  Norm n2 = make_norm(*this, prefix + ".norm2", config_.norm, c);
  Conv c1 = make_conv(*this, prefix + ".conv1.conv", conv_spec(c, c, 3));
  Conv c2 = make_conv(*this, prefix + ".conv2.conv", conv_spec(c, c, 3));
  return {n1, n2, c1, c2};
}

SegResNetImpl::SegResNetImpl(SegResNetConfig config) : config_(std::move(config)) {
  config_.validate();
  const int f = config_.init_filters;
  conv_init_ = make_conv(*this, "convInit.conv", conv_spec(config_.in_channels, f, 3));
  for (std::size_t i = 0; i < config_.blocks_down.size(); ++i) {  // _make_down_layers
    const int c = f << i;
    const std::string p = fmt::format("down_layers.{}", i);
    Level level;
    if (i > 0) level.pre_conv = make_conv(*this, p + ".0.conv", conv_spec(c / 2, c, 3, 2));
    for (int b = 0; b < config_.blocks_down[i]; ++b) level.blocks.push_back(make_res_block(fmt::format("{}.{}", p, b + 1), c));
    down_.push_back(std::move(level));
  }
  const std::size_t n_up = config_.blocks_up.size();
  up_.resize(n_up);
  for (std::size_t i = 0; i < n_up; ++i) {  // up_layers (registered before up_samples)
    const int c = (f << (n_up - i)) / 2;
    for (int b = 0; b < config_.blocks_up[i]; ++b) up_[i].blocks.push_back(make_res_block(fmt::format("up_layers.{}.{}", i, b), c));
  }
  for (std::size_t i = 0; i < n_up; ++i) {  // up_samples: 1x1 conv, then UpSample(mode)
    const int c = f << (n_up - i);
    const std::string p = fmt::format("up_samples.{}", i);
    up_[i].pre_conv = make_conv(*this, p + ".0.conv", conv_spec(c, c / 2, 1));
    if (config_.upsample_mode == "deconv") {  // ConvTranspose3d(c/2, c/2, 2, stride 2), bias
      ConvSpec s = conv_spec(c / 2, c / 2, 2, 2, true);
      s.padding = {0, 0, 0};
      s.transposed = true;
      up_[i].up_conv = make_conv(*this, p + ".1.deconv", s);
    } else if (config_.upsample_mode == "pixelshuffle") {  // SubpixelUpsample: Conv3d(c/2, c/2 * 8, 3), ICNR
      ConvSpec s = conv_spec(c / 2, c / 2 * 8, 3, 1, true);
      s.init = ConvInit::Icnr;
      up_[i].up_conv = make_conv(*this, p + ".1.pixelshuffle.conv_block", s);
    }
  }
  final_norm_ = make_norm(*this, "conv_final.0", config_.norm, f);  // built even when use_conv_final is false
  final_conv_ = make_conv(*this, "conv_final.2.conv", conv_spec(f, config_.out_channels, 1, 1, true));
}

torch::Tensor SegResNetImpl::run_res_block(const ResBlock& b, const torch::Tensor& x) const {
  const bool training = is_training();
  torch::Tensor y = b.conv1(config_.act(b.norm1(x, training)));
  y = b.conv2(config_.act(b.norm2(y, training)));
  return y + x;
}

torch::Tensor SegResNetImpl::upsample(const Level& level, torch::Tensor x) const {
  x = (*level.pre_conv)(x);
  if (config_.upsample_mode == "deconv") return (*level.up_conv)(x);
  if (config_.upsample_mode == "pixelshuffle") {
    // monai.networks.utils.pixelshuffle (scale 2, 3D), then ConstantPad3d((1, 0) * 3) and AvgPool3d(2, stride 1).
    x = (*level.up_conv)(x);
    const auto n = x.size(0), c = x.size(1) / 8, X = x.size(2), Y = x.size(3), Z = x.size(4);
    x = x.reshape({n, c, 2, 2, 2, X, Y, Z}).permute({0, 1, 5, 2, 6, 3, 7, 4}).reshape({n, c, 2 * X, 2 * Y, 2 * Z});
    x = torch::constant_pad_nd(x, {1, 0, 1, 0, 1, 0}, 0.0);
    return torch::avg_pool3d(x, {2, 2, 2}, {1, 1, 1});
  }
  namespace F = torch::nn::functional;  // nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
  return F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2, 2}).mode(torch::kTrilinear).align_corners(false));
}

torch::Tensor SegResNetImpl::forward(const torch::Tensor& input) {
  if (input.dim() != 5 || input.size(1) != config_.in_channels)
    throw Error(fmt::format("SegResNet input must be [N, {}, X, Y, Z], got {}", config_.in_channels, fmt::join(input.sizes(), "x")));
  const auto d = divisors()[0];
  for (int i = 2; i < 5; ++i)
    if (input.size(i) % d != 0)
      throw Error(fmt::format("SegResNet spatial sizes must be divisible by {}, got {}", d, fmt::join(input.sizes().slice(2), "x")));
  const bool training = is_training();
  torch::Tensor x = conv_init_(input);
  if (config_.dropout_prob) x = torch::feature_dropout(x, *config_.dropout_prob, training);  // nn.Dropout3d
  std::vector<torch::Tensor> skips;
  for (const auto& level : down_) {
    if (level.pre_conv) x = (*level.pre_conv)(x);
    for (const auto& b : level.blocks) x = run_res_block(b, x);
    skips.push_back(x);
  }
  for (std::size_t i = 0; i < up_.size(); ++i) {
    x = upsample(up_[i], x) + skips[skips.size() - 2 - i];
    for (const auto& b : up_[i].blocks) x = run_res_block(b, x);
  }
  if (config_.use_conv_final) x = final_conv_(config_.act(final_norm_(x, training)));
  return x;
}

nlohmann::json SegResNetImpl::config() const {
  const auto& c = config_;
  return {{"name", "segresnet"},
          {"spatial_dims", 3},
          {"init_filters", c.init_filters},
          {"in_channels", c.in_channels},
          {"out_channels", c.out_channels},
          {"dropout_prob", c.dropout_prob ? nlohmann::json(*c.dropout_prob) : nlohmann::json()},
          {"act", c.act.to_json()},
          {"norm", c.norm.to_json()},
          {"use_conv_final", c.use_conv_final},
          {"blocks_down", c.blocks_down},
          {"blocks_up", c.blocks_up},
          {"upsample_mode", c.upsample_mode}};
}

std::array<std::int64_t, 3> SegResNetImpl::divisors() const {
  const std::int64_t d = std::int64_t{1} << (config_.blocks_down.size() - 1);
  return {d, d, d};
}

SegResNetConfig segresnet_config_from_json(const nlohmann::json& j) {
  SegResNetConfig c;
  for (const auto& [key, value] : j.items()) {
    const std::string where = fmt::format("segresnet: `{}`", key);
    try {
      if (key == "name") continue;
      else if (key == "spatial_dims") {
        if (value.get<int>() != 3) throw UsageError(fmt::format("segresnet: `spatial_dims` must be 3, got {}", value.dump()));
      } else if (key == "init_filters") c.init_filters = parse_int(value, where, 1);
      else if (key == "in_channels") c.in_channels = parse_int(value, where, 1);
      else if (key == "out_channels") c.out_channels = parse_int(value, where, 1);
      else if (key == "dropout_prob") c.dropout_prob = value.is_null() ? std::nullopt : std::optional<double>(value.get<double>());
      else if (key == "act") c.act = parse_act(value, where);
      else if (key == "norm") c.norm = parse_norm(value, where);
      else if (key == "use_conv_final") c.use_conv_final = value.get<bool>();
      else if (key == "blocks_down") c.blocks_down = parse_ints(value, where, 1);
      else if (key == "blocks_up") c.blocks_up = parse_ints(value, where, 0);
      else if (key == "upsample_mode") c.upsample_mode = value.get<std::string>();
      else
        throw UsageError(fmt::format("segresnet: unknown setting `{}` (spatial_dims, init_filters, in_channels, out_channels, "
                                     "dropout_prob, act, norm, use_conv_final, blocks_down, blocks_up, upsample_mode)",
                                     key));
    } catch (const nlohmann::json::exception&) {
      throw UsageError(fmt::format("segresnet: setting `{}` has the wrong type: {}", key, value.dump()));
    }
  }
  c.validate();
  return c;
}

}  // namespace segscale::model
