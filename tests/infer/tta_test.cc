// infer --tta flip: for a flip-equivariant predictor (a voxel-wise one) the flip mean equals the plain sigmoid;
// for one that is not, it equals the mean of the 8 flipped-back predictions; an unknown mode is a UsageError.
#include "infer/tta.h"

#include <gtest/gtest.h>

#include <set>

#include "util/error.h"

namespace segscale::infer {
namespace {

TEST(FlipTta, EightDistinctCombinationsOfTheSpatialAxes) {
  const auto dims = tta_flip_dims();
  ASSERT_EQ(dims.size(), 8u);
  std::set<std::set<std::int64_t>> seen;
  for (const auto& d : dims) {
    for (auto a : d) EXPECT_TRUE(a >= 2 && a <= 4);
    seen.insert(std::set<std::int64_t>(d.begin(), d.end()));
  }
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_TRUE(dims.front().empty());
}

TEST(FlipTta, VoxelWisePredictorOrSymmetricInputGivesThePlainPrediction) {
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({1, 2, 6, 5, 4});
  auto voxelwise = [](const torch::Tensor& v) { return torch::cat({v.sum(1, true), v.select(1, 0).unsqueeze(1) * 2 - 1}, 1); };
  const torch::Tensor plain = tta_probabilities(x, voxelwise, "none");
  EXPECT_TRUE(torch::allclose(tta_probabilities(x, voxelwise, "flip"), plain, 0, 1e-6));
  // A predictor that depends on position, on an input symmetric under every flip: each flipped-back prediction
  // is the mirror image of the plain one, so the mean is the plain one only where the prediction is symmetric.
  const torch::Tensor sym = x + x.flip({2}) + x.flip({3}) + x.flip({4}) + x.flip({2, 3}) + x.flip({2, 4}) + x.flip({3, 4}) + x.flip({2, 3, 4});
  const torch::Tensor ramp = torch::arange(6, torch::kFloat32).view({1, 1, 6, 1, 1}) * 0.3;
  auto positional = [&](const torch::Tensor& v) { return v.narrow(1, 0, 1) + ramp; };
  torch::Tensor want = torch::zeros_like(positional(sym));
  for (const auto& d : tta_flip_dims()) {
    torch::Tensor p = d.empty() ? torch::sigmoid(positional(sym)) : torch::sigmoid(positional(sym.flip(d))).flip(d);
    want = want + p;
  }
  want = want / 8;
  const torch::Tensor got = tta_probabilities(sym, positional, "flip");
  EXPECT_TRUE(torch::allclose(got, want, 0, 1e-7));
  EXPECT_FALSE(torch::allclose(got, tta_probabilities(sym, positional, "none"), 0, 1e-3));  // the ramp is not symmetric
  EXPECT_TRUE(torch::allclose(got, got.flip({2}), 0, 1e-6));                                // the mean is
}

TEST(FlipTta, UnknownModeIsAUsageError) {
  const torch::Tensor x = torch::zeros({1, 1, 2, 2, 2});
  EXPECT_THROW(tta_probabilities(x, [](const torch::Tensor& v) { return v; }, "rot90"), UsageError);
}

}  // namespace
}  // namespace segscale::infer
