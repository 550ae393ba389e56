// nnU-Net v1's planning rule against values computed by nnU-Net's own get_pool_and_conv_props
// (nnunet/experiment_planning/common_utils.py) and numpy.percentile for the same inputs.
#include "prep/plan.h"

#include <gtest/gtest.h>

#include "../support/temp_dir.h"

namespace segscale::prep {
namespace {

using V = std::vector<Int3>;

TEST(NnunetPlan, BratsOneMillimetre128CubedPoolsFiveTimesOnEveryAxis) {
  const PoolConvPlan p = get_pool_and_conv_props({1, 1, 1}, {128, 128, 128});
  EXPECT_EQ(p.num_pool_per_axis, (Int3{5, 5, 5}));
  EXPECT_EQ(p.pool_op_kernel_sizes, V(5, Int3{2, 2, 2}));
  EXPECT_EQ(p.conv_kernel_sizes, V(6, Int3{3, 3, 3}));
  EXPECT_EQ(p.patch_size, (Int3{128, 128, 128}));
  EXPECT_EQ(p.must_be_divisible_by, (Int3{32, 32, 32}));
  V strides{{1, 1, 1}};
  for (int i = 0; i < 5; ++i) strides.push_back({2, 2, 2});
  EXPECT_EQ(p.dynunet_strides(), strides);
}

TEST(NnunetPlan, AnisotropicSpacingKeepsTheCoarseAxisUnpooledAndUnconvolvedFirst) {
  // nnU-Net: ([5, 5, 2], [[2,2,1],[2,2,2],[2,2,2],[2,2,1],[2,2,1]], [[3,3,1],[3,3,3]x5], [160, 160, 20], [32, 32, 4])
  const PoolConvPlan p = get_pool_and_conv_props({0.8, 0.8, 3.0}, {160, 160, 20});
  EXPECT_EQ(p.num_pool_per_axis, (Int3{5, 5, 2}));
  EXPECT_EQ(p.pool_op_kernel_sizes, (V{{2, 2, 1}, {2, 2, 2}, {2, 2, 2}, {2, 2, 1}, {2, 2, 1}}));
  EXPECT_EQ(p.conv_kernel_sizes, (V{{3, 3, 1}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}}));
  EXPECT_EQ(p.patch_size, (Int3{160, 160, 20}));
  EXPECT_EQ(p.must_be_divisible_by, (Int3{32, 32, 4}));
  // The coarse axis first: ([2, 5, 5], [[1,2,2],[1,2,2],[2,2,2],[2,2,2],[1,2,2]], [[1,3,3],[1,3,3],[3,3,3]x4], [20, 160, 160])
  const PoolConvPlan q = get_pool_and_conv_props({3.6, 0.7, 0.7}, {20, 150, 150});
  EXPECT_EQ(q.num_pool_per_axis, (Int3{2, 5, 5}));
  EXPECT_EQ(q.pool_op_kernel_sizes, (V{{1, 2, 2}, {1, 2, 2}, {2, 2, 2}, {2, 2, 2}, {1, 2, 2}}));
  EXPECT_EQ(q.conv_kernel_sizes, (V{{1, 3, 3}, {1, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}}));
  EXPECT_EQ(q.patch_size, (Int3{20, 160, 160}));  // 150 padded up to a multiple of 32
}

TEST(NnunetPlan, PaddingAndThePoolCap) {
  // ([4, 4, 3], [[2,2,1],[2,2,2],[2,2,2],[2,2,2]], [[3,3,3]x5], [112, 96, 64], [16, 16, 8])
  const PoolConvPlan p = get_pool_and_conv_props({1.0, 1.5, 2.5}, {100, 90, 60});
  EXPECT_EQ(p.num_pool_per_axis, (Int3{4, 4, 3}));
  EXPECT_EQ(p.pool_op_kernel_sizes, (V{{2, 2, 1}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}}));
  EXPECT_EQ(p.conv_kernel_sizes, V(5, Int3{3, 3, 3}));
  EXPECT_EQ(p.patch_size, (Int3{112, 96, 64}));
  const PoolConvPlan c = get_pool_and_conv_props({1, 1, 1}, {128, 128, 128}, 4, 3);
  EXPECT_EQ(c.num_pool_per_axis, (Int3{3, 3, 3}));
  EXPECT_EQ(c.conv_kernel_sizes.size(), 4u);
  segscale::testing::expect_error_containing([] { get_pool_and_conv_props({1, 0, 1}, {8, 8, 8}); }, {"spacing"});
  segscale::testing::expect_error_containing([] { get_pool_and_conv_props({1, 1, 1}, {8, 0, 8}); }, {"patch"});
}

TEST(NnunetPlan, TargetSpacingIsTheMedianOrTheTenthPercentileOnAnAnisotropicAxis) {
  EXPECT_DOUBLE_EQ(percentile({3, 6, 4.5, 5}, 50), 4.75);
  EXPECT_DOUBLE_EQ(percentile({3, 6, 4.5, 5}, 10), 3.45);  // numpy: 3 + 0.3 * (4.5 - 3)
  const std::vector<Real3> spacings{{0.7, 0.7, 5}, {0.8, 0.8, 6}, {0.75, 0.75, 4.5}, {0.7, 0.7, 3}};
  const std::vector<Int3> sizes{{512, 512, 20}, {400, 400, 25}, {480, 480, 30}, {512, 512, 40}};
  const Real3 t = target_spacing(spacings, sizes);
  EXPECT_DOUBLE_EQ(t[0], 0.725);
  EXPECT_DOUBLE_EQ(t[1], 0.725);
  EXPECT_DOUBLE_EQ(t[2], 3.45);  // anisotropic (4.75 > 3 x 0.725, 27.5 x 3 < 496): the 10th percentile
  // Not anisotropic in voxels: the median stays.
  const std::vector<Int3> thick{{100, 100, 90}, {100, 100, 90}, {100, 100, 90}, {100, 100, 90}};
  EXPECT_DOUBLE_EQ(target_spacing(spacings, thick)[2], 4.75);
  const std::vector<Real3> iso{{1, 1, 1}, {1, 1, 1}};
  EXPECT_EQ(target_spacing(iso, {{240, 240, 155}, {240, 240, 155}}), (Real3{1, 1, 1}));
}

}  // namespace
}  // namespace segscale::prep
