#include "model/dynunet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "util/error.h"

namespace segscale::model {
namespace {

std::string str(const Vec3& v) { return fmt::format("[{}]", fmt::join(v, ", ")); }

// monai.networks.blocks.dynunet_block.get_padding: (kernel - stride + 1) / 2, truncated; negative is an error.
Vec3 padding_for(const Vec3& k, const Vec3& s, const std::string& what) {
  Vec3 p{};
  for (int a = 0; a < 3; ++a) {
    if (k[a] - s[a] + 1 < 0)
      throw UsageError(fmt::format("dynunet: {}: kernel {} with stride {} gives a negative padding", what, str(k), str(s)));
    p[a] = (k[a] - s[a] + 1) / 2;
  }
  return p;
}

ConvSpec conv_spec(int in, int out, const Vec3& k, const Vec3& s, bool bias, const std::string& what) {
  ConvSpec c;
  c.in = in;
  c.out = out;
  c.kernel = k;
  c.stride = s;
  c.padding = padding_for(k, s, what);
  c.bias = bias;
  c.init = ConvInit::KaimingNormal;
  return c;
}

std::vector<Vec3> parse_vec3_list(const nlohmann::json& j, const std::string& key) {
  if (!j.is_array()) throw UsageError(fmt::format("dynunet: `{}` must be a list, got {}", key, j.dump()));
  std::vector<Vec3> v;
  for (std::size_t i = 0; i < j.size(); ++i) v.push_back(parse_vec3(j[i], fmt::format("dynunet: `{}[{}]`", key, i)));
  return v;
}

nlohmann::json vec3_list_json(const std::vector<Vec3>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& x : v) j.push_back(vec3_json(x));
  return j;
}

const Vec3 kOne{1, 1, 1};

}  // namespace

void DynUNetConfig::finish() {
  if (in_channels < 1) throw UsageError(fmt::format("dynunet: `in_channels` must be positive, got {}", in_channels));
  if (out_channels < 1) throw UsageError(fmt::format("dynunet: `out_channels` must be positive, got {}", out_channels));
  if (kernel_size.empty()) throw UsageError("dynunet: `kernel_size` is required (one kernel per level, at least 3 levels)");
  if (strides.empty()) throw UsageError("dynunet: `strides` is required (one stride per level, at least 3 levels)");
  if (kernel_size.size() != strides.size() || kernel_size.size() < 3)
    throw UsageError(fmt::format("dynunet: `kernel_size` and `strides` need the same length, at least 3 (got {} and {})",
                                 kernel_size.size(), strides.size()));
  const std::size_t L = strides.size();
  for (std::size_t i = 0; i < L; ++i)
    for (int a = 0; a < 3; ++a) {
      if (kernel_size[i][a] < 1) throw UsageError(fmt::format("dynunet: `kernel_size[{}]` must be positive, got {}", i, str(kernel_size[i])));
      if (strides[i][a] < 1) throw UsageError(fmt::format("dynunet: `strides[{}]` must be positive, got {}", i, str(strides[i])));
    }
  if (strides[0] != kOne)
    throw UsageError(fmt::format("dynunet: `strides[0]` must be 1 (segscale's networks return logits at the input's size), got {}",
                                 str(strides[0])));
  const std::vector<Vec3> expected_up(strides.begin() + 1, strides.end());
  if (upsample_kernel_size.empty()) upsample_kernel_size = expected_up;
  if (upsample_kernel_size != expected_up)
    throw UsageError("dynunet: `upsample_kernel_size` must equal strides[1:] (MONAI uses it as the transposed convolutions' stride)");
  if (filters.empty()) {
    for (std::size_t i = 0; i < L; ++i) filters.push_back(std::min(1 << (5 + i), 320));
  } else {
    if (filters.size() < L)
      throw UsageError(fmt::format("dynunet: `filters` needs at least one entry per level ({}), got {}", L, filters.size()));
    filters.resize(L);  // MONAI's check_filters keeps the first len(strides)
    for (int f : filters)
      if (f < 1) throw UsageError(fmt::format("dynunet: `filters` must be positive, got [{}]", fmt::join(filters, ", ")));
  }
  if (dropout && !(*dropout >= 0 && *dropout <= 1))
    throw UsageError(fmt::format("dynunet: `dropout` must be in [0, 1] or null, got {}", *dropout));
  if (deep_supervision && (deep_supr_num < 1 || deep_supr_num >= static_cast<int>(L) - 1))
    throw UsageError(fmt::format("dynunet: `deep_supr_num` must be in [1, {}] with {} levels, got {}", L - 2, L, deep_supr_num));
  if (norm_name.kind == NormSpec::Kind::Group)
    for (int f : filters)
      if (f % norm_name.num_groups != 0)
        throw UsageError(fmt::format("dynunet: `norm_name` GROUP num_groups {} must divide every filter count, not {}", norm_name.num_groups, f));
}

DynUNetImpl::Block DynUNetImpl::make_block(const std::string& p, int in, int out, const Vec3& k, const Vec3& s, bool res) {
  // UnetBasicBlock / UnetResBlock register conv1, conv2, lrelu, norm1, norm2 (, conv3, norm3).
  Conv c1 = make_conv(*this, p + ".conv1.conv", conv_spec(in, out, k, s, false, p + ".conv1"));
  Conv c2 = make_conv(*this, p + ".conv2.conv", conv_spec(out, out, k, kOne, false, p + ".conv2"));
  Norm n1 = make_norm(*this, p + ".norm1", config_.norm_name, out);
  Norm n2 = make_norm(*this, p + ".norm2", config_.norm_name, out);
  Block b{c1, c2, n1, n2, std::nullopt, std::nullopt, res};
  if (res && (in != out || s != kOne)) {
    b.conv3 = make_conv(*this, p + ".conv3.conv", conv_spec(in, out, kOne, s, false, p + ".conv3"));
    b.norm3 = make_norm(*this, p + ".norm3", config_.norm_name, out);
  }
  return b;
}

DynUNetImpl::UpBlock DynUNetImpl::make_up_block(const std::string& p, int in, int out, const Vec3& k, const Vec3& uk) {
  ConvSpec t = conv_spec(in, out, uk, uk, config_.trans_bias, p + ".transp_conv");
  t.transposed = true;  // output_padding 2 * padding + stride - kernel = 0
  Conv transp = make_conv(*this, p + ".transp_conv.conv", t);
  return {transp, make_block(p + ".conv_block", 2 * out, out, k, kOne, false)};
}

Conv DynUNetImpl::make_out_block(const std::string& p, int in) {
  return make_conv(*this, p + ".conv.conv", conv_spec(in, config_.out_channels, kOne, kOne, true, p));
}

DynUNetImpl::DynUNetImpl(DynUNetConfig config) : config_(std::move(config)) {
  config_.finish();
  const auto& c = config_;
  const std::size_t L = c.strides.size();
  const bool res = c.res_block;
  down_.push_back(make_block("input_block", c.in_channels, c.filters[0], c.kernel_size[0], c.strides[0], res));
  for (std::size_t i = 1; i + 1 < L; ++i)
    down_.push_back(make_block(fmt::format("downsamples.{}", i - 1), c.filters[i - 1], c.filters[i], c.kernel_size[i], c.strides[i], res));
  down_.push_back(make_block("bottleneck", c.filters[L - 2], c.filters[L - 1], c.kernel_size[L - 1], c.strides[L - 1], res));
  // MONAI's upsamples run deepest first: upsamples.j joins level L-1-j into level L-2-j.
  up_.resize(L - 1, UpBlock{});
  for (std::size_t j = 0; j + 1 < L; ++j) {
    const std::size_t i = L - 2 - j;
    up_[i] = make_up_block(fmt::format("upsamples.{}", j), c.filters[i + 1], c.filters[i], c.kernel_size[i + 1], c.upsample_kernel_size[i]);
  }
  output_ = make_out_block("output_block", c.filters[0]);
  if (c.deep_supervision)
    for (int k = 0; k < c.deep_supr_num; ++k) heads_.push_back(make_out_block(fmt::format("deep_supervision_heads.{}", k), c.filters[k + 1]));
  // MONAI's skip_layers: DynUNetSkipLayer(downsample, next_layer, upsample, super_head) nested once per level.
  std::string p = "skip_layers";
  std::vector<std::string> ups;
  for (std::size_t i = 0; i + 1 < L; ++i, p += ".next_layer") {
    add_alias_prefix(p + ".downsample", i == 0 ? "input_block" : fmt::format("downsamples.{}", i - 1));
    ups.push_back(p);
  }
  add_alias_prefix(p, "bottleneck");
  for (std::size_t i = L - 1; i-- > 0;) {
    add_alias_prefix(ups[i] + ".upsample", fmt::format("upsamples.{}", L - 2 - i));
    if (i >= 1 && i - 1 < heads_.size()) add_alias_prefix(ups[i] + ".super_head", fmt::format("deep_supervision_heads.{}", i - 1));
  }
}

torch::Tensor DynUNetImpl::conv(const Conv& c, const torch::Tensor& x) const {
  torch::Tensor y = c(x);
  if (config_.dropout) y = torch::dropout(y, *config_.dropout, is_training());
  return y;
}

torch::Tensor DynUNetImpl::run_block(const Block& b, const torch::Tensor& x) const {
  const bool training = is_training();
  torch::Tensor out = config_.act_name(b.norm1(conv(b.conv1, x), training));
  out = b.norm2(conv(b.conv2, out), training);
  if (b.res) {
    torch::Tensor residual = x;
    if (b.conv3) residual = (*b.norm3)(conv(*b.conv3, x), training);
    out = out + residual;
  }
  return config_.act_name(out);
}

torch::Tensor DynUNetImpl::run_level(std::size_t level, const torch::Tensor& x, std::vector<torch::Tensor>* heads) const {
  torch::Tensor down = run_block(down_[level], x);
  torch::Tensor next = level + 2 == down_.size() ? run_block(down_.back(), down) : run_level(level + 1, down, heads);
  const UpBlock& u = up_[level];
  torch::Tensor up = run_block(u.conv_block, torch::cat({conv(u.transp_conv, next), down}, 1));
  if (heads && level >= 1 && level - 1 < heads_.size()) (*heads)[level - 1] = conv(heads_[level - 1], up);
  return up;
}

void DynUNetImpl::check_input(const torch::Tensor& x) const {
  if (x.dim() != 5 || x.size(1) != config_.in_channels)
    throw Error(fmt::format("DynUNet input must be [N, {}, X, Y, Z], got {}", config_.in_channels, fmt::join(x.sizes(), "x")));
  const auto d = divisors();
  for (int a = 0; a < 3; ++a)
    if (x.size(2 + a) % d[a] != 0)
      throw Error(fmt::format("DynUNet spatial sizes must be multiples of {} (the product of the strides per axis), got {}", str(d),
                              fmt::join(x.sizes().slice(2), "x")));
}

torch::Tensor DynUNetImpl::forward(const torch::Tensor& x) {
  check_input(x);
  return conv(output_, run_level(0, x, nullptr));
}

torch::Tensor DynUNetImpl::forward_train(const torch::Tensor& x) {
  if (!(config_.deep_supervision && is_training())) return forward(x);
  check_input(x);
  std::vector<torch::Tensor> heads(heads_.size());
  torch::Tensor out = conv(output_, run_level(0, x, &heads));
  std::vector<torch::Tensor> all{out};
  namespace F = torch::nn::functional;  // F.interpolate(head, out.shape[2:]): mode "nearest"
  const std::vector<std::int64_t> size(out.sizes().begin() + 2, out.sizes().end());
  for (const auto& h : heads) all.push_back(F::interpolate(h, F::InterpolateFuncOptions().size(size).mode(torch::kNearest)));
  return torch::stack(all, 1);
}

nlohmann::json DynUNetImpl::config() const {
  const auto& c = config_;
  return {{"name", "dynunet"},
          {"spatial_dims", 3},
          {"in_channels", c.in_channels},
          {"out_channels", c.out_channels},
          {"kernel_size", vec3_list_json(c.kernel_size)},
          {"strides", vec3_list_json(c.strides)},
          {"upsample_kernel_size", vec3_list_json(c.upsample_kernel_size)},
          {"filters", c.filters},
          {"dropout", c.dropout ? nlohmann::json(*c.dropout) : nlohmann::json()},
          {"norm_name", c.norm_name.to_json()},
          {"act_name", c.act_name.to_json()},
          {"deep_supervision", c.deep_supervision},
          {"deep_supr_num", c.deep_supr_num},
          {"res_block", c.res_block},
          {"trans_bias", c.trans_bias}};
}

std::array<std::int64_t, 3> DynUNetImpl::divisors() const {
  std::array<std::int64_t, 3> d{1, 1, 1};
  for (const auto& s : config_.strides)
    for (int a = 0; a < 3; ++a) d[a] *= s[a];
  return d;
}

DynUNetConfig dynunet_config_from_json(const nlohmann::json& j) {
  DynUNetConfig c;
  for (const auto& [key, value] : j.items()) {
    const std::string where = fmt::format("dynunet: `{}`", key);
    try {
      if (key == "name") continue;
      else if (key == "spatial_dims") {
        if (value.get<int>() != 3) throw UsageError(fmt::format("dynunet: `spatial_dims` must be 3, got {}", value.dump()));
      } else if (key == "in_channels") c.in_channels = parse_int(value, where, 1);
      else if (key == "out_channels") c.out_channels = parse_int(value, where, 1);
      else if (key == "kernel_size") c.kernel_size = parse_vec3_list(value, key);
      else if (key == "strides") c.strides = parse_vec3_list(value, key);
      else if (key == "upsample_kernel_size") c.upsample_kernel_size = parse_vec3_list(value, key);
      else if (key == "filters") c.filters = value.is_null() ? std::vector<int>{} : parse_ints(value, where, 1);
      else if (key == "dropout") c.dropout = value.is_null() ? std::nullopt : std::optional<double>(value.get<double>());
      else if (key == "norm_name") c.norm_name = parse_norm(value, where);
      else if (key == "act_name") c.act_name = parse_act(value, where);
      else if (key == "deep_supervision") c.deep_supervision = value.get<bool>();
      else if (key == "deep_supr_num") c.deep_supr_num = parse_int(value, where, 1);
      else if (key == "res_block") c.res_block = value.get<bool>();
      else if (key == "trans_bias") c.trans_bias = value.get<bool>();
      else
        throw UsageError(fmt::format("dynunet: unknown setting `{}` (spatial_dims, in_channels, out_channels, kernel_size, strides, "
                                     "upsample_kernel_size, filters, dropout, norm_name, act_name, deep_supervision, deep_supr_num, "
                                     "res_block, trans_bias)",
                                     key));
    } catch (const nlohmann::json::exception&) {
      throw UsageError(fmt::format("dynunet: setting `{}` has the wrong type: {}", key, value.dump()));
    }
  }
  c.finish();
  return c;
}

}  // namespace segscale::model
