#include "prep/nnunet_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <optional>

#include "prep/plan.h"
#include "util/error.h"

namespace segscale::prep {
namespace {

using Doubles = std::vector<double>;
using Ints = std::vector<std::int64_t>;

// ExperimentPlanner's constants (default_experiment_planner.py:50-71).
constexpr int kBaseFeatures = 32;
constexpr double kReference3d = 560000000, kReference2d = 85000000;
constexpr int kReferenceBatch3d = 2, kReferenceBatch2d = 12;
constexpr int kMinFeatureMap = 4, kMinBatch = 2, kMaxFeatures3d = 320, kMaxFeatures2d = 512;
constexpr double kMaxDatasetCovered = 0.05, kLowresThreshold = 0.25, kLowresSpacingStep = 1.03;

// Python's round() of a float: half to even (the default rounding mode).
std::int64_t py_round(double x) { return static_cast<std::int64_t>(std::nearbyint(x)); }

double product(const Doubles& v) { return std::accumulate(v.begin(), v.end(), 1.0, std::multiplies<>()); }
double product(const Ints& v) {
  double p = 1;
  for (auto x : v) p *= static_cast<double>(x);
  return p;
}

std::vector<int> features_per_stage(std::size_t stages, int max_features) {
  std::vector<int> f;
  for (std::size_t i = 0; i < stages; ++i) f.push_back(static_cast<int>(std::min<std::int64_t>(max_features, std::int64_t{kBaseFeatures} << i)));
  return f;
}

struct Configuration {
  nlohmann::ordered_json json;
  Ints patch_size;
};

// get_plans_for_configuration(spacing, median_shape, data_identifier, approximate_n_voxels_dataset).
Configuration plan_configuration(const Doubles& spacing, const Doubles& median_shape, const std::string& data_identifier,
                                 double approximate_n_voxels_dataset, const DatasetFingerprint& fingerprint, const PlanDataset& dataset,
                                 const nlohmann::ordered_json& median_shape_json) {
  const std::size_t dim = spacing.size();
  for (double s : spacing)
    if (!(s > 0)) throw Error(fmt::format("plan: spacing {} is not positive", s));
  const bool is3d = dim == 3;
  const int max_features = is3d ? kMaxFeatures3d : kMaxFeatures2d;
  // A box of 256^3 (2048^2) voxels shaped as 1/spacing, clipped to the median shape.
  Doubles tmp;
  for (double s : spacing) tmp.push_back(1 / s);
  const double scale = is3d ? std::pow(256.0 * 256.0 * 256.0 / product(tmp), 1.0 / 3) : std::pow(2048.0 * 2048.0 / product(tmp), 1.0 / 2);
  Doubles initial;
  for (std::size_t d = 0; d < dim; ++d) initial.push_back(std::min(static_cast<double>(py_round(tmp[d] * scale)), median_shape[d]));
  Topology t = nnunet_topology(spacing, initial, kMinFeatureMap);
  const int num_classes = dataset.num_label_keys;
  std::int64_t estimate = conv_feature_map_size(t.patch_size, t.strides, features_per_stage(t.strides.size(), max_features), num_classes);
  const double reference = is3d ? kReference3d : kReference2d;
  const int ref_bs = is3d ? kReferenceBatch3d : kReferenceBatch2d;
  while (static_cast<double>(estimate) / ref_bs * 2 > reference) {
    // Shrink the axis largest relative to the median (np.argsort(...)[-1]: the last of equal ratios).
    std::size_t axis = 0;
    for (std::size_t d = 1; d < dim; ++d)
      if (static_cast<double>(t.patch_size[d]) / median_shape[d] >= static_cast<double>(t.patch_size[axis]) / median_shape[axis]) axis = d;
    Doubles smaller(t.patch_size.begin(), t.patch_size.end());
    smaller[axis] -= static_cast<double>(t.must_be_divisible_by[axis]);
    const std::int64_t step = nnunet_topology(spacing, smaller, kMinFeatureMap).must_be_divisible_by[axis];
    Doubles patch(t.patch_size.begin(), t.patch_size.end());
    patch[axis] -= static_cast<double>(step);
    t = nnunet_topology(spacing, patch, kMinFeatureMap);
    estimate = conv_feature_map_size(t.patch_size, t.strides, features_per_stage(t.strides.size(), max_features), num_classes);
  }
  std::int64_t batch_size = py_round(reference / static_cast<double>(estimate) * ref_bs);
  const std::int64_t five_percent = py_round(approximate_n_voxels_dataset * kMaxDatasetCovered / product(t.patch_size));
  batch_size = std::max<std::int64_t>(std::min(batch_size, five_percent), kMinBatch);

  std::vector<std::string> schemes;
  std::vector<bool> use_mask;
  for (const auto& c : dataset.channel_names) {
    schemes.push_back(normalization_scheme(c));
    // Only ZScoreNormalization leaves voxels outside the mask at zero, so only it uses the mask, and only when
    // the crop to nonzero removes more than a quarter of the median case.
    use_mask.push_back(fingerprint.median_relative_size_after_cropping < 3 / 4.0 && schemes.back() == "ZScoreNormalization");
  }
  const auto resampling = [](bool is_seg, int order) {
    return nlohmann::ordered_json{{"is_seg", is_seg}, {"order", order}, {"order_z", 0}, {"force_separate_z", nullptr}};
  };
  const std::string conv = is3d ? "torch.nn.modules.conv.Conv3d" : "torch.nn.modules.conv.Conv2d";
  const std::string norm = is3d ? "torch.nn.modules.instancenorm.InstanceNorm3d" : "torch.nn.modules.instancenorm.InstanceNorm2d";
  const std::size_t stages = t.strides.size();
  nlohmann::ordered_json arch;
  arch["n_stages"] = stages;
  arch["features_per_stage"] = features_per_stage(stages, max_features);
  arch["conv_op"] = conv;
  arch["kernel_sizes"] = t.kernel_sizes;
  arch["strides"] = t.strides;
  arch["n_conv_per_stage"] = std::vector<int>(stages, 2);
  arch["n_conv_per_stage_decoder"] = std::vector<int>(stages - 1, 2);
  arch["conv_bias"] = true;
  arch["norm_op"] = norm;
  arch["norm_op_kwargs"] = {{"eps", 1e-05}, {"affine", true}};
  arch["dropout_op"] = nullptr;
  arch["dropout_op_kwargs"] = nullptr;
  arch["nonlin"] = "torch.nn.LeakyReLU";
  arch["nonlin_kwargs"] = {{"inplace", true}};

  nlohmann::ordered_json j;
  j["data_identifier"] = data_identifier;
  j["preprocessor_name"] = "DefaultPreprocessor";
  j["batch_size"] = batch_size;
  j["patch_size"] = t.patch_size;
  j["median_image_size_in_voxels"] = median_shape_json;
  j["spacing"] = spacing;
  j["normalization_schemes"] = schemes;
  j["use_mask_for_norm"] = use_mask;
  j["resampling_fn_data"] = "resample_data_or_seg_to_shape";
  j["resampling_fn_seg"] = "resample_data_or_seg_to_shape";
  j["resampling_fn_data_kwargs"] = resampling(false, 3);
  j["resampling_fn_seg_kwargs"] = resampling(true, 1);
  j["resampling_fn_probabilities"] = "resample_data_or_seg_to_shape";
  j["resampling_fn_probabilities_kwargs"] = resampling(false, 1);
  j["architecture"] = {{"network_class_name", "dynamic_network_architectures.architectures.unet.PlainConvUNet"},
                       {"arch_kwargs", arch},
                       {"_kw_requires_import", {"conv_op", "norm_op", "dropout_op", "nonlin"}}};
  return {j, t.patch_size};
}

template <typename T>
std::vector<T> permuted(const std::vector<T>& v, const std::vector<int>& order) {
  std::vector<T> out;
  for (int i : order) out.push_back(v[static_cast<std::size_t>(i)]);
  return out;
}

}  // namespace

std::string normalization_scheme(const std::string& channel_name) {
  std::string k = channel_name;
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (k == "ct") return "CTNormalization";
  if (k == "nonorm") return "NoNormalization";
  if (k == "rescale_to_0_1") return "RescaleTo01Normalization";
  if (k == "rgb_to_0_1") return "RGBTo01Normalization";
  return "ZScoreNormalization";
}

Topology nnunet_topology(const std::vector<double>& spacing, const std::vector<double>& patch, int min_feature_map_size, int max_numpool) {
  const std::size_t dim = spacing.size();
  if (patch.size() != dim) throw Error("plan: spacing and patch have different numbers of axes");
  Doubles cur_spacing = spacing, cur_size = patch;
  Topology t;
  t.num_pool_per_axis.assign(dim, 0);
  t.strides.push_back(std::vector<int>(dim, 1));
  std::vector<int> kernel(dim, 1);
  for (;;) {
    std::vector<std::size_t> valid;
    for (std::size_t d = 0; d < dim; ++d)
      if (cur_size[d] >= 2 * min_feature_map_size) valid.push_back(d);
    if (valid.empty()) break;
    double min_valid = INFINITY;
    for (auto d : valid) min_valid = std::min(min_valid, cur_spacing[d]);
    std::erase_if(valid, [&](std::size_t d) { return !(cur_spacing[d] / min_valid < 2) || t.num_pool_per_axis[d] >= max_numpool; });
    if (valid.size() == 1 && !(cur_size[valid[0]] >= 3 * min_feature_map_size)) break;
    if (valid.empty()) break;
    const double min_all = *std::min_element(cur_spacing.begin(), cur_spacing.end());
    for (std::size_t d = 0; d < dim; ++d)
      if (kernel[d] != 3 && cur_spacing[d] / min_all < 2) kernel[d] = 3;
    std::vector<int> pool(dim, 1);
    for (auto d : valid) {
      pool[d] = 2;
      ++t.num_pool_per_axis[d];
      cur_spacing[d] *= 2;
      cur_size[d] = std::ceil(cur_size[d] / 2);
    }
    t.strides.push_back(pool);
    t.kernel_sizes.push_back(kernel);
  }
  for (std::size_t d = 0; d < dim; ++d) {
    const std::int64_t div = std::int64_t{1} << t.num_pool_per_axis[d];
    t.must_be_divisible_by.push_back(div);
    // pad_shape: up to the next multiple (a multiple stays), then astype(int).
    const double r = std::fmod(patch[d], static_cast<double>(div));
    t.patch_size.push_back(static_cast<std::int64_t>(r == 0 ? patch[d] : patch[d] + static_cast<double>(div) - r));
  }
  t.kernel_sizes.push_back(std::vector<int>(dim, 3));  // the bottleneck
  return t;
}

std::int64_t conv_feature_map_size(const std::vector<std::int64_t>& patch, const std::vector<std::vector<int>>& strides,
                                   const std::vector<int>& features, int num_classes) {
  const auto prod = [](const Ints& s) { return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>()); };
  const std::size_t n = strides.size();
  std::int64_t out = 0;
  Ints size = patch;
  std::vector<Ints> skips;  // each stage's output size
  for (std::size_t s = 0; s < n; ++s) {
    for (std::size_t d = 0; d < size.size(); ++d) size[d] /= strides[s][d];
    out += 2 * features[s] * prod(size);  // two convs per encoder stage
    skips.push_back(size);
  }
  // Decoder stage s works at the size of encoder stage n-2-s: two convs, the transposed conv, and the
  // segmentation layer on the last stage only (deep supervision off).
  for (std::size_t s = 0; s + 1 < n; ++s) {
    const std::size_t e = n - 2 - s;
    out += 2 * features[e] * prod(skips[e]) + features[e] * prod(skips[e]);
    if (s + 2 == n) out += num_classes * prod(skips[e]);
  }
  return out;
}

nlohmann::ordered_json plan_experiment(const DatasetFingerprint& f, const PlanDataset& dataset) {
  const std::size_t cases = f.spacings.size();
  if (cases == 0 || f.shapes_after_crop.size() != cases) throw Error("plan: the fingerprint lists no cases");
  // Target spacing: median, or the 10th percentile on an axis much coarser than the others with few voxels.
  std::vector<Real3> spacings;
  std::vector<Int3> sizes;
  for (std::size_t i = 0; i < cases; ++i) {
    spacings.push_back(f.spacings[i]);
    sizes.push_back(f.shapes_after_crop[i]);
  }
  const Real3 target3 = target_spacing(spacings, sizes);
  const Doubles target(target3.begin(), target3.end());
  const int worst = static_cast<int>(std::max_element(target.begin(), target.end()) - target.begin());
  std::vector<int> forward{worst}, backward(3);
  for (int d = 0; d < 3; ++d)
    if (d != worst) forward.push_back(d);
  for (int d = 0; d < 3; ++d) backward[static_cast<std::size_t>(forward[static_cast<std::size_t>(d)])] = d;
  // Median shape at the target spacing: compute_new_shape per case (round(old_spacing / new * old_shape)), np.median.
  Doubles new_median(3);
  for (int d = 0; d < 3; ++d) {
    Doubles v;
    for (std::size_t i = 0; i < cases; ++i)
      v.push_back(static_cast<double>(py_round(f.spacings[i][static_cast<std::size_t>(d)] / target[static_cast<std::size_t>(d)] *
                                               static_cast<double>(f.shapes_after_crop[i][static_cast<std::size_t>(d)]))));
    new_median[static_cast<std::size_t>(d)] = median(v);
  }
  const Doubles spacing_t = permuted(target, forward), median_t = permuted(new_median, forward);
  const double approx_voxels = product(median_t) * dataset.num_training;

  nlohmann::ordered_json configurations = nlohmann::ordered_json::object();
  std::optional<Configuration> fullres, lowres;
  if (median_t[0] != 1) {
    fullres = plan_configuration(spacing_t, median_t, "nnUNetPlans_3d_fullres", approx_voxels, f, dataset, median_t);
    double median_voxels = product(median_t);
    double patch_voxels = product(fullres->patch_size);
    Doubles lowres_spacing = spacing_t;
    while (patch_voxels / median_voxels < kLowresThreshold) {
      // Coarsen the fine axes first until all are within a factor 2 of the coarsest, then all of them.
      const double max_spacing = *std::max_element(lowres_spacing.begin(), lowres_spacing.end());
      bool any = false;
      for (double s : lowres_spacing) any |= max_spacing / s > 2;
      for (double& s : lowres_spacing)
        if (!any || max_spacing / s > 2) s *= kLowresSpacingStep;
      Doubles shape;
      Ints rounded;
      for (std::size_t d = 0; d < 3; ++d) {
        shape.push_back(spacing_t[d] / lowres_spacing[d] * median_t[d]);
        rounded.push_back(py_round(shape.back()));
      }
      median_voxels = product(shape);
      Doubles rounded_d(rounded.begin(), rounded.end());
      lowres = plan_configuration(lowres_spacing, rounded_d, "nnUNetPlans_3d_lowres", median_voxels * dataset.num_training, f, dataset, rounded);
      patch_voxels = product(lowres->patch_size);
    }
    if (product(median_t) / median_voxels < 2) lowres.reset();
    fullres->json["batch_dice"] = lowres.has_value();
    if (lowres) {
      lowres->json["batch_dice"] = false;
      lowres->json["next_stage"] = "3d_cascade_fullres";
    }
  }
  Configuration plan2d = plan_configuration({spacing_t[1], spacing_t[2]}, {median_t[1], median_t[2]}, "nnUNetPlans_2d", approx_voxels, f,
                                            dataset, Doubles{median_t[1], median_t[2]});
  plan2d.json["batch_dice"] = true;
  configurations["2d"] = plan2d.json;
  if (lowres) configurations["3d_lowres"] = lowres->json;
  if (fullres) configurations["3d_fullres"] = fullres->json;
  if (lowres && fullres) configurations["3d_cascade_fullres"] = {{"inherits_from", "3d_fullres"}, {"previous_stage", "3d_lowres"}};

  Doubles median_spacing(3), median_shape(3);
  for (std::size_t d = 0; d < 3; ++d) {
    Doubles sp, sh;
    for (std::size_t i = 0; i < cases; ++i) {
      sp.push_back(f.spacings[i][d]);
      sh.push_back(static_cast<double>(f.shapes_after_crop[i][d]));
    }
    median_spacing[d] = median(sp);
    median_shape[d] = median(sh);
  }
  Ints median_shape_int;
  for (int d : forward) median_shape_int.push_back(py_round(median_shape[static_cast<std::size_t>(d)]));

  nlohmann::ordered_json plans;
  plans["dataset_name"] = dataset.name;
  plans["plans_name"] = "nnUNetPlans";
  plans["original_median_spacing_after_transp"] = permuted(median_spacing, forward);
  plans["original_median_shape_after_transp"] = median_shape_int;
  plans["image_reader_writer"] = "SimpleITKIO";
  plans["transpose_forward"] = forward;
  plans["transpose_backward"] = backward;
  plans["configurations"] = configurations;
  plans["experiment_planner_used"] = "ExperimentPlanner";
  plans["label_manager"] = "LabelManager";
  plans["foreground_intensity_properties_per_channel"] = f.to_json()["foreground_intensity_properties_per_channel"];
  return plans;
}

}  // namespace segscale::prep
