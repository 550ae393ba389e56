#include <gtest/gtest.h>

#include <cmath>

#include "transforms/intensity.h"
#include "transforms/spacing.h"
#include "transforms/spatial.h"
#include "util/error.h"

namespace segscale::transforms {
namespace {

Volume ramp(std::int64_t c, const Shape3& s, const Affine& a) {
  Volume v = Volume::make(c, s, a);
  for (std::size_t i = 0; i < v.data.size(); ++i) v.data[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) * 100.0 + 200.0);
  return v;
}

std::array<double, 3> world(const Affine& a, double i, double j, double k) {
  return {a(0, 0) * i + a(0, 1) * j + a(0, 2) * k + a(0, 3), a(1, 0) * i + a(1, 1) * j + a(1, 2) * k + a(1, 3),
          a(2, 0) * i + a(2, 1) * j + a(2, 2) * k + a(2, 3)};
}

TEST(Spacing, BratsGridShapesAndOrigins) {
  auto ras = plan_spacing({240, 240, 155}, Affine::identity(), {1.5, 1.5, 2.0});
  EXPECT_EQ(ras.out_size, (Shape3{160, 160, 78}));  // 239/1.5+1 = 160.33 -> 160; 154/2+1 = 78
  EXPECT_LT(max_abs_diff(ras.out_affine, Affine::diagonal(1.5, 1.5, 2.0)), 1e-12);
  Affine lps = Affine::diagonal(-1, -1, 1);
  lps(0, 3) = 239;
  lps(1, 3) = 239;
  lps(2, 3) = -20;
  auto p = plan_spacing({240, 240, 155}, lps, {1.5, 1.5, 2.0});
  Affine want = Affine::diagonal(-1.5, -1.5, 2.0);
  want(0, 3) = 239;
  want(1, 3) = 239;
  want(2, 3) = -20;
  EXPECT_LT(max_abs_diff(p.out_affine, want), 1e-12);
  // spec 4: orientation of that grid gives diag(1.5, 1.5, 2), t = (0.5, 0.5, -20)
  auto o = plan_orientation(p.out_size, p.out_affine, "RAS");
  Affine ras_want = Affine::diagonal(1.5, 1.5, 2.0);
  ras_want(0, 3) = 0.5;
  ras_want(1, 3) = 0.5;
  ras_want(2, 3) = -20;
  EXPECT_LT(max_abs_diff(o.out_affine, ras_want), 1e-12);
}

TEST(Spacing, RoundHalfToEvenAndToleranceKeepsSpacing) {
  // (n-1)*s_in/s_out + 1 = 2.5 exactly -> 2 (half to even)
  EXPECT_EQ(plan_spacing({4, 4, 4}, Affine::identity(), {2.0, 2.0, 2.0}).out_size[0], 2);
  auto same = plan_spacing({10, 10, 10}, Affine::diagonal(1.5004, 1.5, 2.0), {1.5, 1.5, 2.0});
  EXPECT_TRUE(same.identity);
  EXPECT_DOUBLE_EQ(same.out_affine(0, 0), 1.5004);  // within 1e-3: keeps its own spacing
}

TEST(Spacing, IdentityPassesValuesThrough) {
  Volume v = ramp(2, {5, 4, 3}, Affine::diagonal(1.5, 1.5, 2.0));
  auto plan = plan_spacing(v.size, v.affine, {1.5, 1.5, 2.0});
  Volume out = resample_bilinear(v, plan);
  EXPECT_EQ(out.data, v.data);
}

TEST(Spacing, BilinearOnALinearFieldIsExact) {
  Volume v = Volume::make(1, {9, 7, 5}, Affine::identity());
  for (std::int64_t x = 0; x < 9; ++x)
    for (std::int64_t y = 0; y < 7; ++y)
      for (std::int64_t z = 0; z < 5; ++z) v.data[(x * 7 + y) * 5 + z] = static_cast<float>(2 * x + 3 * y - z);
  auto plan = plan_spacing(v.size, v.affine, {1.5, 1.5, 2.0});
  Volume out = resample_bilinear(v, plan);
  EXPECT_EQ(out.size, (Shape3{6, 5, 3}));
  for (std::int64_t i = 0; i < 6; ++i)
    for (std::int64_t j = 0; j < 5; ++j)
      for (std::int64_t k = 0; k < 3; ++k) {
        double x = std::min(1.5 * i, 8.0), y = std::min(1.5 * j, 6.0), z = std::min(2.0 * k, 4.0);
        EXPECT_NEAR(out.data[(i * 5 + j) * 3 + k], 2 * x + 3 * y - z, 1e-5);
      }
}

TEST(Spacing, WindowEqualsFullGridThenCropForAlignedAndObliqueGrids) {
  Affine oblique;
  const double t = 0.3;
  oblique.m = {{{std::cos(t) * 1.1, -std::sin(t), 0, 4}, {std::sin(t) * 1.1, std::cos(t), 0.1, -2}, {0, 0, 1.3, 1}, {0, 0, 0, 1}}};
  for (const Affine& a : {Affine::diagonal(-1, 1, 1), oblique}) {
    Volume v = ramp(2, {20, 18, 14}, a);
    auto plan = plan_spacing(v.size, v.affine, {1.5, 1.5, 2.0});
    Volume full = resample_bilinear(v, plan, {}, 2);
    Window w{{2, 3, 1}, {std::min<std::int64_t>(8, plan.out_size[0] - 2), 5, 4}};
    Volume part = resample_bilinear(v, plan, w);
    Volume cut = crop(full, w.start, w.size);
    EXPECT_EQ(part.data, cut.data);
    EXPECT_LT(max_abs_diff(part.affine, cut.affine), 1e-12);
    LabelVolume lab = LabelVolume::make(1, v.size, a);
    for (std::size_t i = 0; i < lab.data.size(); ++i) lab.data[i] = static_cast<std::uint8_t>(i % 5);
    EXPECT_EQ(resample_nearest(lab, plan, w).data, crop(resample_nearest(lab, plan), w.start, w.size).data);
  }
}

TEST(Spacing, NearestRoundsHalfToEven) {
  LabelVolume lab = LabelVolume::make(1, {6, 1, 1}, Affine::identity());
  for (int i = 0; i < 6; ++i) lab.data[i] = static_cast<std::uint8_t>(i);
  auto plan = plan_spacing(lab.size, lab.affine, {1.5, 1.0, 1.0});
  auto out = resample_nearest(lab, plan);
  // sources 0, 1.5, 3, 4.5 -> 0, 2, 3, 4
  EXPECT_EQ(std::vector<std::uint8_t>(out.data.begin(), out.data.end()), (std::vector<std::uint8_t>{0, 2, 3, 4}));
}

TEST(Orientation, LpsToRasKeepsEveryVoxelAtItsWorldPosition) {
  Affine lps = Affine::diagonal(-1.5, -1.5, 2.0);
  lps(0, 3) = 30;
  lps(1, 3) = 20;
  Volume v = ramp(1, {6, 5, 4}, lps);
  auto plan = plan_orientation(v.size, v.affine, "RAS");
  Volume out = apply_orientation(v, plan);
  EXPECT_EQ(axcodes(out.affine), "RAS");
  for (std::int64_t i = 0; i < 6; ++i)
    for (std::int64_t j = 0; j < 5; ++j)
      for (std::int64_t k = 0; k < 4; ++k) {
        auto w = world(out.affine, i, j, k);
        auto src = world(inverse(v.affine), w[0], w[1], w[2]);
        auto si = static_cast<std::int64_t>(std::lround(src[0])), sj = static_cast<std::int64_t>(std::lround(src[1])),
             sk = static_cast<std::int64_t>(std::lround(src[2]));
        ASSERT_EQ(out.data[(i * 5 + j) * 4 + k], v.data[(si * 5 + sj) * 4 + sk]);
      }
}

TEST(Orientation, PermutedAxesAndOtherTargets) {
  Affine pir;  // voxel axes follow (P, I, R)
  pir.m = {{{0, 0, 1, 0}, {-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 0, 1}}};
  Volume v = ramp(1, {3, 4, 5}, pir);
  Volume ras = apply_orientation(v, plan_orientation(v.size, v.affine, "RAS"));
  EXPECT_EQ(ras.size, (Shape3{5, 3, 4}));
  EXPECT_EQ(axcodes(ras.affine), "RAS");
  Volume back = apply_orientation(ras, plan_orientation(ras.size, ras.affine, "PIR"));
  EXPECT_EQ(back.data, v.data);
  EXPECT_THROW(plan_orientation(v.size, v.affine, "RRS"), Error);
}

TEST(CropFlip, AffinesFollowTheVoxels) {
  Volume v = ramp(1, {6, 5, 4}, Affine::diagonal(1.5, 1.5, 2.0));
  Volume c = crop(v, {1, 2, 0}, {3, 2, 4});
  EXPECT_DOUBLE_EQ(c.affine(0, 3), 1.5);
  EXPECT_DOUBLE_EQ(c.affine(1, 3), 3.0);
  EXPECT_EQ(c.data[0], v.data[(1 * 5 + 2) * 4]);
  Volume f = c;
  flip_axis(f, 0);
  EXPECT_DOUBLE_EQ(f.affine(0, 0), -1.5);
  EXPECT_DOUBLE_EQ(f.affine(0, 3), 1.5 + 1.5 * 2);  // first voxel of the flipped grid is the old last one
  EXPECT_EQ(f.data[0], c.data[2 * 2 * 4]);
  flip_axis(f, 0);
  EXPECT_EQ(f.data, c.data);
  for (int axis : {1, 2}) {
    Volume g = c;
    flip_axis(g, axis);
    EXPECT_NE(g.data, c.data);
    flip_axis(g, axis);
    EXPECT_EQ(g.data, c.data);
  }
  EXPECT_THROW(crop(v, {4, 0, 0}, {3, 5, 4}), Error);
}

TEST(Intensity, NormaliseNonzeroChannelWise) {
  Volume v = Volume::make(2, {2, 2, 1}, Affine::identity());
  v.data = {0, 2, 4, 6, /* channel 1 */ 5, 5, 0, 0};
  normalize_intensity(v, true, true);
  const double mean = 4, sd = std::sqrt(8.0 / 3.0);
  EXPECT_EQ(v.data[0], 0.0f);
  EXPECT_NEAR(v.data[1], (2 - mean) / sd, 1e-6);
  EXPECT_NEAR(v.data[3], (6 - mean) / sd, 1e-6);
  EXPECT_EQ(v.data[4], 0.0f);  // std 0 -> 1: (5 - 5) / 1
  EXPECT_EQ(v.data[6], 0.0f);
  Volume bad = Volume::make(1, {2, 1, 1}, Affine::identity());
  bad.data = {1.0f, std::nanf("")};
  EXPECT_THROW(normalize_intensity(bad, true, true, "case X"), Error);
}

TEST(Intensity, ScaleShiftAndLabelChannels) {
  Volume v = Volume::make(1, {2, 1, 1}, Affine::identity());
  v.data = {0.0f, 2.0f};
  scale_intensity(v, 0.05);
  EXPECT_EQ(v.data[1], 2.0f * static_cast<float>(1.05));
  shift_intensity(v, -0.1);
  EXPECT_EQ(v.data[0], static_cast<float>(-0.1));  // background shifts too, as MONAI's
  LabelVolume l = LabelVolume::make(1, {4, 1, 1}, Affine::identity());
  l.data = {0, 1, 2, 3};
  Volume ch = label_channels(l, data::label_map_preset("blog"));
  EXPECT_EQ(std::vector<float>(ch.data.begin(), ch.data.end()), (std::vector<float>{0, 0, 1, 1, /*WT*/ 0, 1, 1, 1, /*ET*/ 0, 0, 1, 0}));
}

}  // namespace
}  // namespace segscale::transforms
