#include "prep/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace segscale::prep {

std::vector<Int3> PoolConvPlan::dynunet_strides() const {
  std::vector<Int3> s{{1, 1, 1}};
  s.insert(s.end(), pool_op_kernel_sizes.begin(), pool_op_kernel_sizes.end());
  return s;
}

PoolConvPlan get_pool_and_conv_props(const Real3& spacing, const Int3& patch_size, int min_feature_map_size, int max_numpool) {
  for (int a = 0; a < 3; ++a) {
    if (!(spacing[a] > 0) || !std::isfinite(spacing[a])) throw Error(fmt::format("plan: spacing {} is not a positive number", spacing[a]));
    if (patch_size[a] < 1) throw Error(fmt::format("plan: patch size {} is not positive", patch_size[a]));
  }
  constexpr int dim = 3;
  Real3 current_spacing = spacing;
  Real3 current_size{static_cast<double>(patch_size[0]), static_cast<double>(patch_size[1]), static_cast<double>(patch_size[2])};
  PoolConvPlan plan;
  for (;;) {
    const double min_spacing = *std::min_element(current_spacing.begin(), current_spacing.end());
    std::vector<int> valid;
    for (int i = 0; i < dim; ++i)
      if (current_spacing[i] / min_spacing < 2) valid.push_back(i);
    std::vector<int> axes;
    for (int a = 0; a < dim; ++a) {
      const double my = current_spacing[a];
      std::vector<int> partners;
      for (int i = 0; i < dim; ++i)
        if (current_spacing[i] / my < 2 && my / current_spacing[i] < 2) partners.push_back(i);
      if (partners.size() > axes.size()) axes = partners;
    }
    Int3 conv{};
    for (int i = 0; i < dim; ++i) conv[i] = std::find(axes.begin(), axes.end(), i) != axes.end() ? 3 : 1;
    std::vector<int> pool_axes;
    for (int i : valid)
      if (current_size[i] >= 2.0 * min_feature_map_size && plan.num_pool_per_axis[i] < max_numpool) pool_axes.push_back(i);
    if (pool_axes.empty()) break;
    Int3 pool{1, 1, 1};
    for (int v : pool_axes) {
      pool[v] = 2;
      ++plan.num_pool_per_axis[v];
      current_spacing[v] *= 2;
      current_size[v] /= 2;
    }
    plan.pool_op_kernel_sizes.push_back(pool);
    plan.conv_kernel_sizes.push_back(conv);
  }
  for (int i = 0; i < dim; ++i) {
    const std::int64_t d = std::int64_t{1} << plan.num_pool_per_axis[i];
    plan.must_be_divisible_by[i] = d;
    // pad_shape: up to the next multiple of d (unchanged when already one).
    plan.patch_size[i] = patch_size[i] % d == 0 ? patch_size[i] : patch_size[i] + d - patch_size[i] % d;
  }
  plan.conv_kernel_sizes.push_back({3, 3, 3});  // the bottleneck
  return plan;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) throw Error("percentile of no values");
  std::sort(values.begin(), values.end());
  // numpy's 'linear' method step by step (same float operations): virtual index (n - 1) * q, then _lerp from the
  // nearer end.
  const double n = static_cast<double>(values.size()), qq = q / 100.0;
  const double pos = (n - 1) * qq;
  const double lo_f = std::floor(pos);
  const double t = pos - lo_f;
  const auto lo = static_cast<std::size_t>(std::clamp(lo_f, 0.0, n - 1));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  const double a = values[lo], b = values[hi], diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

double median(std::vector<double> values) {
  if (values.empty()) throw Error("median of no values");
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

Real3 target_spacing(const std::vector<Real3>& spacings, const std::vector<Int3>& sizes) {
  if (spacings.empty() || spacings.size() != sizes.size()) throw Error("plan: no cases (or spacings and sizes of different counts)");
  Real3 target{}, target_size{};
  for (int a = 0; a < 3; ++a) {
    std::vector<double> s, n;
    for (const auto& x : spacings) s.push_back(x[a]);
    for (const auto& x : sizes) n.push_back(static_cast<double>(x[a]));
    target[a] = percentile(s, 50);
    target_size[a] = percentile(n, 50);
  }
  const int worst = static_cast<int>(std::max_element(target.begin(), target.end()) - target.begin());  // argmax: first maximum
  double max_other_spacing = 0, min_other_size = INFINITY;
  for (int a = 0; a < 3; ++a)
    if (a != worst) {
      max_other_spacing = std::max(max_other_spacing, target[a]);
      min_other_size = std::min(min_other_size, target_size[a]);
    }
  constexpr double kAnisotropyThreshold = 3;
  const bool aniso_spacing = target[worst] > kAnisotropyThreshold * max_other_spacing;
  const bool aniso_voxels = target_size[worst] * kAnisotropyThreshold < min_other_size;
  if (aniso_spacing && aniso_voxels) {
    std::vector<double> s;
    for (const auto& x : spacings) s.push_back(x[worst]);
    double t = percentile(s, 10);
    if (t < max_other_spacing) t = std::max(max_other_spacing, t) + 1e-5;
    target[worst] = t;
  }
  return target;
}

}  // namespace segscale::prep
