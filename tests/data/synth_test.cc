#include "data/synth.h"

#include <gtest/gtest.h>

#include <set>

#include "../support/temp_dir.h"
#include "io/file.h"
#include "io/nifti_image.h"
#include "util/error.h"

namespace segscale::data {
namespace {

using segscale::testing::TempDir;

TEST(Synth, PhantomIsAPureFunctionOfSeedAndIndex) {
  auto a = make_phantom({24, 20, 16}, 7, 1, SynthLayout::kMsd);
  auto b = make_phantom({24, 20, 16}, 7, 1, SynthLayout::kMsd);
  auto c = make_phantom({24, 20, 16}, 8, 1, SynthLayout::kMsd);
  auto d = make_phantom({24, 20, 16}, 7, 2, SynthLayout::kMsd);
  EXPECT_EQ(a.image, b.image);
  EXPECT_EQ(a.label, b.label);
  EXPECT_NE(a.image, c.image);
  EXPECT_NE(a.label, d.label);
}

TEST(Synth, PhantomHasBrainTumourAndZeroBackground) {
  for (auto layout : {SynthLayout::kMsd, SynthLayout::kBrats21}) {
    auto p = make_phantom({48, 48, 32}, 0, 0, layout);
    const std::size_t n = p.label.size();
    std::set<int> values(p.label.begin(), p.label.end());
    EXPECT_EQ(values, layout == SynthLayout::kMsd ? std::set<int>({0, 1, 2, 3}) : std::set<int>({0, 1, 2, 4}));
    std::size_t fg = 0;
    for (std::size_t i = 0; i < n; ++i) {
      bool any = false;
      for (int m = 0; m < 4; ++m) any |= p.image[m * n + i] != 0;
      fg += any;
      if (p.label[i] != 0) {
        EXPECT_TRUE(any) << "tumour outside the brain at " << i;
      }
    }
    EXPECT_GT(fg, n / 5);
    EXPECT_LT(fg, n * 3 / 4);
    EXPECT_EQ(p.image[0], 0.0f);  // the corner is background
  }
}

TEST(Synth, LpsFilesHoldTheSameWorldAsRas) {
  TempDir ras, lps;
  SynthOptions o;
  o.cases = 1;
  o.shape = {10, 8, 6};
  o.quiet = true;
  o.layout = "brats21";
  o.out = ras.path();
  synthesize_dataset(o);
  o.out = lps.path();
  o.orientation = "LPS";
  synthesize_dataset(o);
  auto a = io::read_nifti(ras / "BraTS2021_00000/BraTS2021_00000_t1ce.nii.gz");
  auto b = io::read_nifti(lps / "BraTS2021_00000/BraTS2021_00000_t1ce.nii.gz");
  EXPECT_EQ(axcodes(a.affine()), "RAS");
  EXPECT_EQ(axcodes(b.affine()), "LPS");
  auto fa = io::to_float32(a), fb = io::to_float32(b);
  for (int z = 0; z < 6; ++z)
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 10; ++x) {
        // Same voxel centre in world space: a's (x,y,z) is b's (9-x, 7-y, z).
        ASSERT_EQ(fa[x + 10 * (y + 8 * z)], fb[(9 - x) + 10 * ((7 - y) + 8 * z)]);
        Affine wa = a.affine(), wb = b.affine();
        EXPECT_DOUBLE_EQ(wa(0, 0) * x + wa(0, 3), wb(0, 0) * (9 - x) + wb(0, 3));
      }
}

TEST(Synth, SameSeedGivesByteIdenticalFilesWhateverTheThreadCount) {
  TempDir a, b;
  SynthOptions o;
  o.cases = 3;
  o.shape = {12, 12, 8};
  o.quiet = true;
  o.out = a.path();
  o.threads = 1;
  synthesize_dataset(o);
  o.out = b.path();
  o.threads = 3;
  synthesize_dataset(o);
  for (const char* f : {"imagesTr/BRATS_003.nii.gz", "labelsTr/BRATS_001.nii.gz", "dataset.json"})
    EXPECT_EQ(io::read_file(a / f), io::read_file(b / f)) << f;
}

TEST(Synth, RejectsBadOptions) {
  SynthOptions o;
  o.out = "/tmp/unused";
  o.cases = 0;
  EXPECT_THROW(synthesize_dataset(o), UsageError);
  o.cases = 1;
  o.layout = "nifti";
  EXPECT_THROW(synthesize_dataset(o), UsageError);
}

}  // namespace
}  // namespace segscale::data
