#include "prep/nnunet_preprocess.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "transforms/rng.h"
#include "util/error.h"

namespace segscale::prep {
namespace {

std::int64_t py_round(double x) { return static_cast<std::int64_t>(std::nearbyint(x)); }

// data.transpose([0, *[t + 1 for t in transpose_forward]]) of one C-ordered volume.
template <typename T>
std::vector<T> transposed(const std::vector<T>& v, const Shape& shape, const std::array<int, 3>& t) {
  if (t == std::array<int, 3>{0, 1, 2}) return v;
  const Shape out_shape{shape[static_cast<std::size_t>(t[0])], shape[static_cast<std::size_t>(t[1])], shape[static_cast<std::size_t>(t[2])]};
  const std::array<std::int64_t, 3> stride{shape[1] * shape[2], shape[2], 1};
  const std::int64_t s0 = stride[static_cast<std::size_t>(t[0])], s1 = stride[static_cast<std::size_t>(t[1])], s2 = stride[static_cast<std::size_t>(t[2])];
  std::vector<T> out(v.size());
  std::size_t o = 0;
  for (std::int64_t i = 0; i < out_shape[0]; ++i)
    for (std::int64_t j = 0; j < out_shape[1]; ++j)
      for (std::int64_t k = 0; k < out_shape[2]; ++k) out[o++] = v[static_cast<std::size_t>(i * s0 + j * s1 + k * s2)];
  return out;
}

// One channel, in place, as nnU-Net's normalisation classes do it (float32 arithmetic; the mean and deviation are
// summed in float64 here where numpy sums float32 pairwise, so values agree to about 1e-6 relative).
void normalise(float* x, std::size_t n, const std::vector<std::int16_t>& seg, const std::string& scheme, bool use_mask,
               const IntensityProperties& props, const std::string& where) {
  constexpr double kEps = 1e-8;
  if (scheme == "ZScoreNormalization") {
    double sum = 0, sq = 0;
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (!use_mask || seg[i] >= 0) {
        sum += x[i];
        ++count;
      }
    const double mean = count ? sum / static_cast<double>(count) : NAN;
    for (std::size_t i = 0; i < n; ++i)
      if (!use_mask || seg[i] >= 0) sq += (x[i] - mean) * (x[i] - mean);
    const float m = static_cast<float>(mean), s = static_cast<float>(std::max(std::sqrt(sq / static_cast<double>(count)), kEps));
    for (std::size_t i = 0; i < n; ++i)
      if (!use_mask || seg[i] >= 0) x[i] = (x[i] - m) / s;
  } else if (scheme == "CTNormalization") {
    const float lo = static_cast<float>(props.percentile_00_5), hi = static_cast<float>(props.percentile_99_5);
    const float m = static_cast<float>(props.mean), s = static_cast<float>(std::max(props.std, kEps));
    for (std::size_t i = 0; i < n; ++i) x[i] = (std::clamp(x[i], lo, hi) - m) / s;
  } else if (scheme == "RescaleTo01Normalization") {
    const float mn = *std::min_element(x, x + n);
    for (std::size_t i = 0; i < n; ++i) x[i] -= mn;
    const float mx = std::max(*std::max_element(x, x + n), static_cast<float>(kEps));
    for (std::size_t i = 0; i < n; ++i) x[i] /= mx;
  } else if (scheme == "RGBTo01Normalization") {
    const auto [mn, mx] = std::minmax_element(x, x + n);
    if (*mn < 0 || *mx > 255) throw error_at(where, fmt::format("RGBTo01Normalization needs values in 0..255, found {}..{}", *mn, *mx));
    for (std::size_t i = 0; i < n; ++i) x[i] /= 255.0f;
  } else if (scheme != "NoNormalization") {
    throw error_at(where, fmt::format("normalization scheme \"{}\" is not one of nnU-Net's (ZScoreNormalization, CTNormalization, "
                                      "NoNormalization, RescaleTo01Normalization, RGBTo01Normalization)", scheme));
  }
}

}  // namespace

NnunetPreprocessing NnunetPreprocessing::from_plans(const nlohmann::json& plans, const std::string& configuration,
                                                    const nlohmann::ordered_json& dataset_json, const std::string& where) {
  try {
    NnunetPreprocessing p;
    const auto& configs = plans.at("configurations");
    if (!configs.contains(configuration)) throw error_at(where, fmt::format("no configuration \"{}\"", configuration));
    nlohmann::json c = configs.at(configuration);
    if (c.contains("inherits_from")) {
      nlohmann::json merged = configs.at(c["inherits_from"].get<std::string>());
      merged.update(c);
      c = merged;
    }
    const auto t = plans.at("transpose_forward").get<std::vector<int>>();
    std::vector<int> sorted = t;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != std::vector<int>{0, 1, 2}) throw error_at(where, "transpose_forward must be a permutation of 0, 1, 2");
    p.transpose_forward = {t[0], t[1], t[2]};
    p.spacing = c.at("spacing").get<std::vector<double>>();
    p.normalization_schemes = c.at("normalization_schemes").get<std::vector<std::string>>();
    p.use_mask_for_norm = c.at("use_mask_for_norm").get<std::vector<bool>>();
    const auto& props = plans.at("foreground_intensity_properties_per_channel");
    for (std::size_t i = 0; i < p.normalization_schemes.size(); ++i) {
      const std::string k = std::to_string(i);
      IntensityProperties ip;
      if (props.contains(k)) {
        const auto& q = props.at(k);
        ip = {q.at("mean").get<double>(), q.at("median").get<double>(), q.at("std").get<double>(), q.at("min").get<double>(),
              q.at("max").get<double>(), q.at("percentile_99_5").get<double>(), q.at("percentile_00_5").get<double>()};
      }
      p.intensity.push_back(ip);
    }
    // nnU-Net's LabelManager: regions when a label value is a list of more than one label; the foreground
    // classes are the non-background labels (or regions) in dataset.json's order.
    const auto& labels = dataset_json.at("labels");
    for (auto it = labels.begin(); it != labels.end(); ++it)
      if (it.value().is_array() && it.value().size() > 1) p.regions = true;
    std::vector<int> all;
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      if (it.key() == "ignore") continue;  // the ignore label is no class
      std::vector<int> v = it.value().is_array() ? it.value().get<std::vector<int>>() : std::vector<int>{it.value().get<int>()};
      all.insert(all.end(), v.begin(), v.end());
      if (p.regions && std::any_of(v.begin(), v.end(), [](int x) { return x != 0; })) p.foreground.push_back(v);
    }
    if (!p.regions) {  // foreground_labels: the sorted distinct labels but 0
      std::sort(all.begin(), all.end());
      all.erase(std::unique(all.begin(), all.end()), all.end());
      for (int l : all)
        if (l != 0) p.foreground.push_back({l});
    }
    return p;
  } catch (const nlohmann::json::exception& e) {
    throw error_at(where, fmt::format("not an nnU-Net plans file and dataset.json: {}", e.what()));
  }
}

std::vector<std::vector<std::array<std::int64_t, 4>>> sample_foreground_locations(const std::vector<std::int16_t>& seg, const Shape& shape,
                                                                                   const std::vector<std::vector<int>>& classes) {
  // Voxels per label in C order (argwhere, then a stable sort by label).
  std::map<int, std::vector<std::int64_t>> by_label;
  for (const auto& c : classes)
    for (int l : c) by_label[l];
  for (std::size_t i = 0; i < seg.size(); ++i) {
    auto it = by_label.find(seg[i]);
    if (it != by_label.end()) it->second.push_back(static_cast<std::int64_t>(i));
  }
  std::mt19937 rs(1234);  // one RandomState(1234) for all classes, in order
  std::vector<std::vector<std::array<std::int64_t, 4>>> out;
  for (const auto& c : classes) {
    std::vector<const std::vector<std::int64_t>*> parts;
    std::size_t total = 0;
    for (int l : c)
      if (!by_label[l].empty()) {
        parts.push_back(&by_label[l]);
        total += by_label[l].size();
      }
    auto& locs = out.emplace_back();
    if (total == 0) continue;
    const std::size_t k = std::max(std::min<std::size_t>(10000, total), static_cast<std::size_t>(std::ceil(static_cast<double>(total) * 0.01)));
    // rndst.choice(total, k, replace=False) = permutation(total)[:k]: numpy's legacy Fisher-Yates.
    std::vector<std::int64_t> perm(total);
    std::iota(perm.begin(), perm.end(), 0);
    for (std::size_t i = total - 1; i >= 1; --i) {
      const auto j = static_cast<std::size_t>(transforms::legacy_randint(rs, 0, static_cast<std::int64_t>(i) + 1));
      std::swap(perm[i], perm[j]);
    }
    for (std::size_t n = 0; n < k; ++n) {
      std::size_t off = static_cast<std::size_t>(perm[n]);
      std::size_t part = 0;
      while (off >= parts[part]->size()) off -= parts[part++]->size();
      const std::int64_t v = (*parts[part])[off];
      locs.push_back({0, v / (shape[1] * shape[2]), (v / shape[2]) % shape[1], v % shape[2]});
    }
  }
  return out;
}

std::vector<std::uint8_t> nnunet_revert_cropping(const std::vector<std::uint8_t>& seg, const NnunetCase& c, const std::array<int, 3>& t) {
  const Shape& full = c.shape_before_cropping;
  const Box& b = c.bbox_used_for_cropping;
  if (seg.size() != static_cast<std::size_t>(voxels(c.shape))) throw Error("nnunet_revert_cropping: the segmentation is not the case's shape");
  std::vector<std::uint8_t> out(static_cast<std::size_t>(voxels(full)), 0);
  std::size_t i = 0;
  for (std::int64_t x = b.lo[0]; x < b.hi[0]; ++x)
    for (std::int64_t y = b.lo[1]; y < b.hi[1]; ++y)
      for (std::int64_t z = b.lo[2]; z < b.hi[2]; ++z) out[static_cast<std::size_t>((x * full[1] + y) * full[2] + z)] = seg[i++];
  std::array<int, 3> back{};  // transpose_backward: the inverse permutation
  for (int d = 0; d < 3; ++d) back[static_cast<std::size_t>(t[static_cast<std::size_t>(d)])] = d;
  return transposed(out, full, back);
}

NnunetCase nnunet_preprocess(CaseArrays a, const NnunetPreprocessing& p) {
  const std::string where = "nnU-Net preprocessing";
  if (a.channels.size() != p.normalization_schemes.size())
    throw Error(fmt::format("the case has {} channel(s), the plan {}", a.channels.size(), p.normalization_schemes.size()));
  const auto& t = p.transpose_forward;
  NnunetCase out;
  out.spacing = a.spacing;
  const Shape shape{a.shape[static_cast<std::size_t>(t[0])], a.shape[static_cast<std::size_t>(t[1])], a.shape[static_cast<std::size_t>(t[2])]};
  for (auto& ch : a.channels) ch = transposed(ch, a.shape, t);
  if (!a.seg.empty()) a.seg = transposed(a.seg, a.shape, t);
  const std::array<double, 3> original_spacing{a.spacing[static_cast<std::size_t>(t[0])], a.spacing[static_cast<std::size_t>(t[1])],
                                               a.spacing[static_cast<std::size_t>(t[2])]};
  out.shape_before_cropping = shape;
  std::vector<const float*> ptrs;
  for (const auto& ch : a.channels) ptrs.push_back(ch.data());
  const std::vector<std::uint8_t> mask = nonzero_mask(ptrs, shape);
  const Box box = bounding_box(mask, shape);
  out.bbox_used_for_cropping = box;
  out.shape = box.size();
  out.shape_after_cropping_and_before_resampling = out.shape;
  // Resampling: nnU-Net leaves a case alone when its shape at the target spacing is its shape now.
  std::vector<double> target = p.spacing;
  if (target.size() == 2) target.insert(target.begin(), original_spacing[0]);
  if (target.size() != 3) throw Error("the plan's spacing must have 2 or 3 entries");
  for (std::size_t d = 0; d < 3; ++d)
    if (py_round(original_spacing[d] / target[d] * static_cast<double>(out.shape[d])) != out.shape[d])
      throw Error(fmt::format("the case's spacing {:.4g} mm differs from the plan's {:.4g} mm: nnU-Net resamples it, which segscale does "
                              "not do yet (resample the case to the plan's spacing first)",
                              fmt::join(original_spacing, " x "), fmt::join(target, " x ")));
  // Crop; the segmentation (or, without one, the mask as 0 / -1) marks the background outside the mask with -1.
  const std::vector<std::uint8_t> mask_c = crop<std::uint8_t>(mask, shape, box);
  const std::size_t n = mask_c.size();
  std::vector<std::int16_t> seg(n);
  if (!a.seg.empty()) {
    const std::vector<float> s = crop<float>(a.seg, shape, box);
    for (std::size_t i = 0; i < n; ++i) seg[i] = static_cast<std::int16_t>(s[i] == 0 && !mask_c[i] ? -1 : s[i]);
  } else {
    for (std::size_t i = 0; i < n; ++i) seg[i] = mask_c[i] ? 0 : -1;
  }
  out.data.resize(n * a.channels.size());
  for (std::size_t c = 0; c < a.channels.size(); ++c) {
    const std::vector<float> x = crop<float>(a.channels[c], shape, box);
    float* dst = out.data.data() + c * n;
    std::copy(x.begin(), x.end(), dst);
    normalise(dst, n, seg, p.normalization_schemes[c], p.use_mask_for_norm[c], p.intensity[c], where);
  }
  if (!a.seg.empty()) {
    out.class_locations = sample_foreground_locations(seg, out.shape, p.foreground);
    out.seg = std::move(seg);
  }
  return out;
}

}  // namespace segscale::prep
