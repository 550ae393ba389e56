// nnunet_spatial reading the sampler's box in place (LoadedPatch with an offset, partly outside the case) equals
// nnU-Net's way: crop_and_pad the box out first (0 / -1 padding), then transform that array. Bit for bit, on the
// crop path and on the interpolating path. (tests/oracle/test_nnunet_augment.py compares the array path with
// batchgeneratorsv2 itself.)
#include "transforms/nnunet_spatial.h"

#include <gtest/gtest.h>

#include <random>

#include "loader/nnunet_sampler.h"

namespace segscale::transforms {
namespace {

TEST(NnunetSpatial, ABoxReadInPlaceEqualsTheCroppedAndPaddedBox) {
  const Extent3 cs{23, 30, 19}, box{28, 26, 24}, patch{16, 18, 13};
  const int channels = 2;
  std::mt19937 g(5);
  std::uniform_real_distribution<float> u(-2, 2);
  std::vector<float> image(static_cast<std::size_t>(channels * cs[0] * cs[1] * cs[2]));
  for (auto& v : image) v = u(g);
  std::vector<std::int16_t> seg(static_cast<std::size_t>(cs[0] * cs[1] * cs[2]));
  for (std::size_t i = 0; i < seg.size(); ++i) seg[i] = static_cast<std::int16_t>(static_cast<int>(g() % 5) - 1);
  for (const auto& lbs : {Extent3{-3, 2, -4}, Extent3{0, 0, 0}, Extent3{-6, -1, 0}}) {
    loader::PatchBox b;
    b.lbs = lbs;
    for (int d = 0; d < 3; ++d) b.ubs[d] = lbs[d] + box[d];
    const std::size_t nb = static_cast<std::size_t>(box[0] * box[1] * box[2]);
    std::vector<float> cropped(nb * channels);
    std::vector<std::int16_t> cropped_seg(nb);
    loader::crop_and_pad(image.data(), channels, seg.data(), cs, b, cropped.data(), cropped_seg.data());
    NnunetSpatialParams none, turned;
    turned.rotate = turned.scale = true;
    turned.angles = {0.4, -0.3, 0.2};
    turned.zoom = 1.3;  // reaches past the box: -1 competes
    for (const auto& p : {none, turned}) {
      const std::size_t np = static_cast<std::size_t>(patch[0] * patch[1] * patch[2]);
      std::vector<float> a(np * channels, 7.f), c(np * channels, 9.f);
      std::vector<std::int16_t> as(np, 7), cs2(np, 9);
      nnunet_spatial(cropped.data(), channels, cropped_seg.data(), box, patch, p, a.data(), as.data());
      nnunet_spatial(LoadedPatch{image.data(), channels, seg.data(), cs, lbs, box}, patch, p, c.data(), cs2.data());
      EXPECT_EQ(a, c);
      EXPECT_EQ(as, cs2);
    }
  }
}

}  // namespace
}  // namespace segscale::transforms
