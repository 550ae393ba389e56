#include "io/affine.h"

#include <gtest/gtest.h>

#include <cmath>

namespace segscale {
namespace {

TEST(Affine, InverseUndoesTheMap) {
  Affine a = Affine::diagonal(-1.5, 2.0, 0.5);
  a(0, 1) = 0.3;
  a(0, 3) = 10;
  a(1, 3) = -4;
  a(2, 3) = 7;
  EXPECT_LT(max_abs_diff(a * inverse(a), Affine::identity()), 1e-12);
}

TEST(Affine, AxcodesOfCommonOrientations) {
  EXPECT_EQ(axcodes(Affine::identity()), "RAS");
  EXPECT_EQ(axcodes(Affine::diagonal(-1, -1, 1)), "LPS");
  Affine perm;  // voxel axes (y, z, x) with a flip: PIR-like
  perm.m = {{{0, 0, 1, 0}, {-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 0, 1}}};
  EXPECT_EQ(axcodes(perm), "PIR");
}

TEST(Affine, AxcodesOfAnObliqueGridFollowTheClosestAxis) {
  const double t = 20.0 * 3.14159265358979 / 180.0;  // 20 degrees about z: still mostly RAS
  Affine a;
  a.m = {{{std::cos(t), -std::sin(t), 0, 0}, {std::sin(t), std::cos(t), 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 1}}};
  EXPECT_EQ(axcodes(a), "RAS");
  const double u = 60.0 * 3.14159265358979 / 180.0;  // 60 degrees: x follows A, y follows L
  a.m = {{{std::cos(u), -std::sin(u), 0, 0}, {std::sin(u), std::cos(u), 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}};
  EXPECT_EQ(axcodes(a), "ALS");
}

TEST(Affine, VoxelSizesAreColumnNorms) {
  Affine a = Affine::diagonal(-1, -1, 2.5);
  auto s = voxel_sizes(a);
  EXPECT_DOUBLE_EQ(s[0], 1.0);
  EXPECT_DOUBLE_EQ(s[2], 2.5);
}

}  // namespace
}  // namespace segscale
