#pragma once
// nnU-Net's network planning rule (nnU-Net v1, nnunet/experiment_planning: get_pool_and_conv_props in
// common_utils.py and ExperimentPlanner3D_v21.get_target_spacing), followed line by line, as DynUNet takes it.
// libtorch-free.
#include <array>
#include <cstdint>
#include <vector>

namespace segscale::prep {

using Int3 = std::array<std::int64_t, 3>;
using Real3 = std::array<double, 3>;

struct PoolConvPlan {
  Int3 num_pool_per_axis{};
  std::vector<Int3> pool_op_kernel_sizes;  // one per pooling step (2 pools that axis, 1 leaves it)
  std::vector<Int3> conv_kernel_sizes;     // one per resolution level: pooling steps + 1 (the bottleneck: 3,3,3)
  Int3 patch_size{};                       // the requested patch padded up to a multiple of must_be_divisible_by
  Int3 must_be_divisible_by{};             // 2^num_pool_per_axis
  // DynUNet's arguments: kernel_size = conv_kernel_sizes; strides = [[1,1,1]] + pool_op_kernel_sizes.
  std::vector<Int3> dynunet_strides() const;
};

// get_pool_and_conv_props(spacing, patch_size, min_feature_map_size, max_numpool): per step, pool (stride 2)
// every axis whose spacing is < 2x the smallest current spacing, whose current size is >= 2 x
// min_feature_map_size and which has pooled fewer than max_numpool times; conv kernel 3 on the largest group of
// axes whose spacings are within a factor 2 of each other, 1 on the others; stop when no axis can pool.
// nnU-Net v1's 3-D planner passes min_feature_map_size 4 and max_numpool 999. Throws Error for non-positive
// spacing or patch values.
PoolConvPlan get_pool_and_conv_props(const Real3& spacing, const Int3& patch_size, int min_feature_map_size = 4, int max_numpool = 999);

// numpy.percentile(values, q) with linear interpolation (numpy's default). Throws Error for no values.
double percentile(std::vector<double> values, double q);
// numpy.median: the middle value, or the mean of the two middle values.
double median(std::vector<double> values);

// nnU-Net v1's target spacing from the cases' spacings and sizes (same axis order): the median spacing per axis;
// when the coarsest axis is > 3x coarser than the others and has < 1/3 of their voxels, that axis takes the
// 10th percentile of its spacings instead (at least the others' largest spacing + 1e-5).
Real3 target_spacing(const std::vector<Real3>& spacings, const std::vector<Int3>& sizes);

}  // namespace segscale::prep
