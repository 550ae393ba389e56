// nnU-Net v2's planner (prep/nnunet_plan.h) and crop (prep/nonzero_crop.h) on values nnunetv2 2.8.1 computed for
// the same inputs (tests/oracle/test_nnunet_plan.py compares whole plans files against nnU-Net in the torch-2
// stage; these pin the worked example without it).
#include "prep/nnunet_plan.h"

#include <gtest/gtest.h>

#include "prep/nonzero_crop.h"

namespace segscale::prep {
namespace {

using VV = std::vector<std::vector<int>>;

TEST(NnunetTopology, HalvesWithTheCeilingAndPadsThePatchUp) {
  // get_pool_and_conv_props((1, 1, 1), (140, 172, 136), 4, 999999): five poolings on every axis, (160, 192, 160)
  const Topology t = nnunet_topology({1, 1, 1}, {140, 172, 136});
  EXPECT_EQ(t.num_pool_per_axis, (std::vector<int>{5, 5, 5}));
  EXPECT_EQ(t.patch_size, (std::vector<std::int64_t>{160, 192, 160}));
  EXPECT_EQ(t.strides.size(), 6u);
  EXPECT_EQ(t.strides.front(), (std::vector<int>{1, 1, 1}));
  // 112 -> 56 -> 28 -> 14 -> 7: the fifth halving would leave 3.5 < 4, so that axis pools four times.
  const Topology u = nnunet_topology({1, 1, 1}, {128, 160, 112});
  EXPECT_EQ(u.strides, (VV{{1, 1, 1}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}, {2, 2, 1}}));
  EXPECT_EQ(u.kernel_sizes, VV(6, std::vector<int>{3, 3, 3}));
  // An odd size halves up (ceil): 60 -> 30 -> 15 -> 8 still pools, where a floor (7) would not.
  const Topology w = nnunet_topology({1, 1, 1}, {120, 120, 60});
  EXPECT_EQ(w.num_pool_per_axis, (std::vector<int>{5, 5, 4}));
  EXPECT_EQ(w.patch_size, (std::vector<std::int64_t>{128, 128, 64}));
}

TEST(NnunetTopology, VramEstimateOfTheWorkedExample) {
  // PlainConvUNet(deep_supervision=False, 4 label keys).compute_conv_feature_map_size((128, 160, 112)) = 497,584,640
  const Topology t = nnunet_topology({1, 1, 1}, {128, 160, 112});
  EXPECT_EQ(conv_feature_map_size(t.patch_size, t.strides, {32, 64, 128, 256, 320, 320}, 4), 497584640);
}

TEST(NnunetPlan, BratsWorkedExampleShrinksTo128x160x112) {
  DatasetFingerprint f;
  for (int i = 0; i < 5; ++i) {
    f.spacings.push_back({1, 1, 1});
    f.shapes_after_crop.push_back({140, 172, 136});
  }
  f.foreground_intensity_properties_per_channel.assign(4, IntensityProperties{});
  f.median_relative_size_after_cropping = 0.37;
  const auto plans = plan_experiment(f, {"Dataset137_BraTS2021", {"T1", "T1ce", "T2", "Flair"}, 4, 1251});
  const auto& c = plans["configurations"]["3d_fullres"];
  EXPECT_EQ(c["patch_size"], nlohmann::json({128, 160, 112}));
  EXPECT_EQ(c["batch_size"], 2);
  EXPECT_EQ(c["batch_dice"], false);
  EXPECT_EQ(c["use_mask_for_norm"], nlohmann::json({true, true, true, true}));
  EXPECT_EQ(c["architecture"]["arch_kwargs"]["features_per_stage"], nlohmann::json({32, 64, 128, 256, 320, 320}));
  EXPECT_FALSE(plans["configurations"].contains("3d_lowres"));
  EXPECT_EQ(plans["transpose_forward"], nlohmann::json({0, 1, 2}));
}

TEST(NnunetPlan, NormalisationByChannelName) {
  EXPECT_EQ(normalization_scheme("CT"), "CTNormalization");
  EXPECT_EQ(normalization_scheme("noNorm"), "NoNormalization");
  EXPECT_EQ(normalization_scheme("Flair"), "ZScoreNormalization");
}

TEST(NonzeroCrop, FillsEnclosedHolesNotOpenCavities) {
  const Shape s{5, 5, 5};
  std::vector<float> a(125, 0.f);
  for (int i = 1; i < 4; ++i)
    for (int j = 1; j < 4; ++j)
      for (int k = 1; k < 4; ++k) a[static_cast<std::size_t>((i * 5 + j) * 5 + k)] = 1.f;
  a[(2 * 5 + 2) * 5 + 2] = 0.f;  // enclosed: filled
  const float* ch[] = {a.data()};
  auto m = nonzero_mask(ch, s);
  EXPECT_EQ(m[(2 * 5 + 2) * 5 + 2], 1);
  EXPECT_EQ(m[0], 0);
  const Box b = bounding_box(m, s);
  EXPECT_EQ(b.lo, (Shape{1, 1, 1}));
  EXPECT_EQ(b.hi, (Shape{4, 4, 4}));
  a[(2 * 5 + 2) * 5 + 3] = 0.f;  // the hole now reaches the border through (2,2,3), (2,2,4): not a hole
  m = nonzero_mask(ch, s);
  EXPECT_EQ(m[(2 * 5 + 2) * 5 + 2], 0);
  std::vector<float> zero(125, 0.f);
  const float* z[] = {zero.data()};
  const Box all = bounding_box(nonzero_mask(z, s), s);  // nothing nonzero: the whole array
  EXPECT_EQ(all.lo, (Shape{0, 0, 0}));
  EXPECT_EQ(all.hi, s);
}

}  // namespace
}  // namespace segscale::prep
