#include "infer/eval.h"

#include <gtest/gtest.h>

#include <cmath>

namespace segscale::infer {
namespace {

std::vector<std::uint8_t> box(const std::array<std::int64_t, 3>& s, std::array<int, 3> lo, std::array<int, 3> hi) {
  std::vector<std::uint8_t> m(static_cast<std::size_t>(s[0] * s[1] * s[2]), 0);
  for (int z = lo[2]; z < hi[2]; ++z)
    for (int y = lo[1]; y < hi[1]; ++y)
      for (int x = lo[0]; x < hi[0]; ++x) m[static_cast<std::size_t>(x + s[0] * (y + s[1] * z))] = 1;
  return m;
}

TEST(Eval, IdenticalMasks) {
  std::array<std::int64_t, 3> s{10, 10, 10};
  auto a = box(s, {2, 2, 2}, {6, 6, 6});
  auto [d, h] = dice_and_hd95(a, a, s, {1, 1, 1});
  EXPECT_DOUBLE_EQ(d, 1.0);
  EXPECT_DOUBLE_EQ(h, 0.0);
}

TEST(Eval, ShiftedCubeByHand) {
  // 4x4x4 cubes shifted by 2 voxels along x: overlap 2x4x4 = 32 of 64 -> Dice 0.5. Every surface voxel of one
  // cube is within 2 voxels of the other's surface and the shifted faces are exactly 2 away: HD95 = 2 voxels,
  // i.e. 2 * 1.5 mm with 1.5 mm voxels along x.
  std::array<std::int64_t, 3> s{12, 8, 8};
  auto a = box(s, {2, 2, 2}, {6, 6, 6}), b = box(s, {4, 2, 2}, {8, 6, 6});
  auto [d, h] = dice_and_hd95(a, b, s, {1.5, 1, 1});
  EXPECT_DOUBLE_EQ(d, 0.5);
  EXPECT_NEAR(h, 3.0, 1e-12);
}

TEST(Eval, SingleVoxelDistancesUseSpacing) {
  // One voxel each, 3 voxels apart in y and 4 in z with spacing (1, 2, 0.5): distance sqrt(6^2 + 2^2).
  std::array<std::int64_t, 3> s{5, 6, 8};
  auto a = box(s, {1, 1, 1}, {2, 2, 2}), b = box(s, {1, 4, 5}, {2, 5, 6});
  auto [d, h] = dice_and_hd95(a, b, s, {1, 2, 0.5});
  EXPECT_DOUBLE_EQ(d, 0.0);
  EXPECT_NEAR(h, std::sqrt(40.0), 1e-12);
}

TEST(Eval, PercentileInterpolatesAsNumpy) {
  // Truth: a 1x1x20 line; prediction: the same line plus one voxel far away (distance 10 from the line's end).
  // Directed distances pred->truth: 20 zeros and one 10 -> numpy.percentile(., 95) = 0 + (10 - 0) * 0.0 ... at
  // position 0.95 * 20 = 19: between sorted[19] = 0 and sorted[20] = 10, weight 0 -> 0; truth->pred all 0.
  std::array<std::int64_t, 3> s{1, 1, 40};
  auto t = box(s, {0, 0, 0}, {1, 1, 20});
  auto p = t;
  p[29] = 1;
  auto [d, h] = dice_and_hd95(p, t, s, {1, 1, 1});
  EXPECT_NEAR(d, 40.0 / 41.0, 1e-12);
  EXPECT_NEAR(h, 0.0, 1e-12);
  p[39] = 1;  // now two of 22 distances are large: position 0.95 * 21 = 19.95 -> 0.95 * 10 + ... interpolated
  auto [d2, h2] = dice_and_hd95(p, t, s, {1, 1, 1});
  (void)d2;
  EXPECT_NEAR(h2, 0.95 * 10.0, 1e-9);  // sorted: 20 zeros, 10, 20 -> between index 19 (0) and 20 (10)
}

TEST(Eval, EmptyRegionsFollowBrats) {
  std::array<std::int64_t, 3> s{4, 4, 4};
  std::vector<std::uint8_t> empty(64, 0);
  auto one = box(s, {1, 1, 1}, {2, 2, 2});
  EXPECT_EQ(dice_and_hd95(empty, empty, s, {1, 1, 1}), std::make_pair(1.0, 0.0));
  EXPECT_EQ(dice_and_hd95(one, empty, s, {1, 1, 1}), std::make_pair(0.0, kEmptyHausdorff));
  EXPECT_EQ(dice_and_hd95(empty, one, s, {1, 1, 1}), std::make_pair(0.0, kEmptyHausdorff));
}

}  // namespace
}  // namespace segscale::infer
