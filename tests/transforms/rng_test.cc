#include "transforms/rng.h"

#include <gtest/gtest.h>

namespace segscale::transforms {
namespace {

TEST(MonaiRng, ChildSeedsAreTheFirstOutputsOfMt19937) {
  // spec 8c: set_determinism(42) -> (crop, flip, scale, shift) child seeds
  MonaiRng rng(42, 4);
  EXPECT_EQ(rng.child_seed(0), 1608637542u);
  EXPECT_EQ(rng.child_seed(1), 3421126067u);
  EXPECT_EQ(rng.child_seed(2), 4083286876u);
  EXPECT_EQ(rng.child_seed(3), 787846414u);
}

TEST(MonaiRng, LegacyAlgorithmsMatchNumpy) {
  // numpy 1.24: RandomState(0).rand() == 0.5488135039273248; RandomState(7).randint(0, 33) x5 ==
  // [4, 25, 3, 19, 23], then randint(3, 1000) x3 == [618, 351, 188]
  std::mt19937 g(0);
  EXPECT_DOUBLE_EQ(legacy_rand(g), 0.5488135039273248);
  std::mt19937 h(7);
  for (int want : {4, 25, 3, 19, 23}) EXPECT_EQ(legacy_randint(h, 0, 33), want);
  for (int want : {618, 351, 188}) EXPECT_EQ(legacy_randint(h, 3, 1000), want);
  std::mt19937 k(0);
  EXPECT_EQ(legacy_randint(k, 5, 6), 5);  // one value: no draw
  EXPECT_EQ(k(), std::mt19937(0)());
}

TEST(MonaiRng, SpecExampleDrawsForSeed42) {
  MonaiRng rng(42, 4);
  // crop of a 160x160x78 volume to 128x128x64: start (27, 10, 12); flip applied
  EXPECT_EQ(rng.randint(0, Stream::kOuter, 0, 33), 27);
  EXPECT_EQ(rng.randint(0, Stream::kOuter, 0, 33), 10);
  EXPECT_EQ(rng.randint(0, Stream::kOuter, 0, 15), 12);
  EXPECT_LT(rng.rand(1, Stream::kOuter), 0.5);
}

TEST(SampleRng, DrawsArePureFunctionsOfSeedKeyCopyAndSlot) {
  SampleRng a(3, "BRATS_001", 5), b(3, "BRATS_001", 5);
  // Interleaving slots differently does not change any slot's sequence.
  double a0 = a.rand(0, Stream::kOuter), a1 = a.rand(1, Stream::kOuter), a0b = a.rand(0, Stream::kOuter);
  double b1 = b.rand(1, Stream::kOuter), b0 = b.rand(0, Stream::kOuter), b0b = b.rand(0, Stream::kOuter);
  EXPECT_EQ(a0, b0);
  EXPECT_EQ(a1, b1);
  EXPECT_EQ(a0b, b0b);
  EXPECT_NE(SampleRng(3, "BRATS_001", 6).rand(0, Stream::kOuter), a0);
  EXPECT_NE(SampleRng(3, "BRATS_002", 5).rand(0, Stream::kOuter), a0);
  EXPECT_NE(SampleRng(4, "BRATS_001", 5).rand(0, Stream::kOuter), a0);
  EXPECT_NE(SampleRng(3, "BRATS_001", 5).rand(0, Stream::kInner), a0);
}

TEST(SampleRng, RandintIsUniformEnough) {
  SampleRng r(1, "k", 0);
  std::array<int, 7> hist{};
  for (int i = 0; i < 70000; ++i) {
    auto v = r.randint(0, Stream::kOuter, 10, 17);
    ASSERT_GE(v, 10);
    ASSERT_LT(v, 17);
    ++hist[v - 10];
  }
  for (int h : hist) EXPECT_NEAR(h, 10000, 500);
}

}  // namespace
}  // namespace segscale::transforms
