// The host loader's fused path (the chain run from the stored bytes into the batch) against its generic path
// (decode, then the transforms one by one): byte-identical batches for float32 and float16 --cache stores in
// training and both validation modes, and for a --copies store; a skipped bad sample leaves a smaller batch.
#include "loader/host_loader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "../support/temp_dir.h"
#include "../support/test_stores.h"

namespace segscale::loader {
namespace {

namespace fs = std::filesystem;
using segscale::testing::TempDir;

class HostLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    transforms::Pipeline p = transforms::Pipeline::case_study();
    p.label_map = "msd";
    std::get<transforms::RandCropStep>(p.steps[2]).roi = {16, 12, 10};
    p.steps[3] = transforms::RandFlipStep{0.5, 1};
    segscale::testing::make_test_stores(dir_->path(), 3, p);
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::vector<HostBatch> epoch(const char* store_name, SampleMode mode, bool fused, std::int64_t epoch) {
    auto st = std::make_shared<store::StoreReader>(*dir_ / store_name);
    std::vector<std::size_t> all(st->samples().size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    HostLoaderOptions o;
    o.batch = 2;
    o.threads = 2;
    o.seed = 11;
    o.mode = mode;
    o.roi = {14, 14, 8};
    o.pipeline = transforms::Pipeline::from_json(st->manifest()["settings"]["pipeline"], "manifest");
    o.fused = fused;
    HostLoader l(st, all, o);
    l.start_epoch(epoch);
    std::vector<HostBatch> out;
    while (auto b = l.next()) out.push_back(std::move(*b));
    return out;
  }

  static TempDir* dir_;
};
TempDir* HostLoaderTest::dir_ = nullptr;

void expect_same(const std::vector<HostBatch>& a, const std::vector<HostBatch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].keys, b[i].keys);
    EXPECT_EQ(a[i].image_shape, b[i].image_shape);
    EXPECT_EQ(a[i].label_shape, b[i].label_shape);
    ASSERT_EQ(a[i].image.size(), b[i].image.size());
    ASSERT_EQ(a[i].label.size(), b[i].label.size());
    EXPECT_EQ(std::memcmp(a[i].image.data(), b[i].image.data(), a[i].image.size() * 4), 0) << "batch " << i;
    EXPECT_EQ(std::memcmp(a[i].label.data(), b[i].label.data(), a[i].label.size()), 0) << "batch " << i;
  }
}

TEST_F(HostLoaderTest, FusedEqualsGenericInEveryModeAndDtype) {
  for (const char* name : {"f32", "f16"})
    for (SampleMode mode : {SampleMode::kRandomStage, SampleMode::kCenterCrop, SampleMode::kWhole, SampleMode::kAsStored})
      for (std::int64_t e : {0, 1, 2}) {
        SCOPED_TRACE(::testing::Message() << name << " mode " << static_cast<int>(mode) << " epoch " << e);
        const auto fused = epoch(name, mode, true, e);
        expect_same(fused, epoch(name, mode, false, e));
        ASSERT_FALSE(fused.empty());
        EXPECT_EQ(fused[0].image_shape[1], 4);
        if (mode == SampleMode::kRandomStage) EXPECT_EQ(fused[0].image_shape[2], 16);
        if (mode == SampleMode::kCenterCrop) EXPECT_EQ(fused[0].image_shape[4], 8);
      }
  expect_same(epoch("copies", SampleMode::kAsStored, true, 0), epoch("copies", SampleMode::kAsStored, false, 0));
}

// nnU-Net's chain in small: normalise, then the foreground-oversampled crop (with image_key), then flips of one
// axis, of a list of axes and of all axes, scale and shift.
class HostLoaderPosNegTest : public HostLoaderTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    transforms::Pipeline p;
    p.label_map = "msd";
    transforms::RandCropPosNegStep crop;
    crop.roi = {12, 10, 8};
    crop.pos = 1;
    crop.neg = 2;
    crop.use_image = true;
    transforms::FlipAxes xz;
    xz.axis = {true, false, true};
    p.steps = {transforms::SpacingStep{}, transforms::OrientationStep{}, transforms::NormalizeStep{}, crop,
               transforms::RandFlipStep{0.5, 0}, transforms::RandFlipStep{0.5, xz}, transforms::RandFlipStep{0.5, transforms::FlipAxes::all()},
               transforms::RandScaleStep{0.1, 1.0}, transforms::RandShiftStep{0.1, 1.0}};
    segscale::testing::make_test_stores(dir_->path(), 3, p);
  }
};

TEST_F(HostLoaderPosNegTest, FusedEqualsGenericForPosNegCropsAndFlipLists) {
  for (const char* name : {"f32", "f16"})
    for (std::int64_t e : {0, 1, 2, 3}) {
      SCOPED_TRACE(::testing::Message() << name << " epoch " << e);
      const auto fused = epoch(name, SampleMode::kRandomStage, true, e);
      expect_same(fused, epoch(name, SampleMode::kRandomStage, false, e));
      ASSERT_FALSE(fused.empty());
      EXPECT_EQ(fused[0].image_shape[2], 12);
      EXPECT_EQ(fused[0].image_shape[4], 8);
    }
  expect_same(epoch("copies", SampleMode::kAsStored, true, 0), epoch("copies", SampleMode::kAsStored, false, 0));
}

TEST(BufferPool, HandsBackWhatFitsAndKeepsAtMostItsLimit) {
  BufferPool pool(2);
  auto a = pool.floats(100);
  const float* where = a.data();
  pool.give_back(std::move(a));
  auto b = pool.floats(60);  // fits in the kept 100
  EXPECT_EQ(b.data(), where);
  EXPECT_EQ(b.size(), 60u);
  auto c = pool.floats(200);  // nothing kept fits
  EXPECT_NE(c.data(), where);
  pool.give_back(std::move(b));
  pool.give_back(std::move(c));
  pool.give_back(pool.floats(300));
  EXPECT_EQ(pool.kept(), 2u);
  pool.give_back(UninitVector<std::uint8_t>{});  // empty: nothing to keep
  EXPECT_EQ(pool.kept(), 2u);
}

TEST_F(HostLoaderTest, DroppedBatchesLendTheirBuffersToLaterOnes) {
  auto st = std::make_shared<store::StoreReader>(*dir_ / "f32");
  HostLoaderOptions o;
  o.batch = 1;
  o.threads = 1;
  o.prefetch = 1;
  o.mode = SampleMode::kRandomStage;
  o.pipeline = transforms::Pipeline::from_json(st->manifest()["settings"]["pipeline"], "manifest");
  HostLoader l(st, {0, 1, 2}, o);
  std::set<const float*> seen;
  int batches = 0;
  for (int e = 0; e < 4; ++e) {
    l.start_epoch(e);
    while (auto b = l.next()) seen.insert(b->image.data()), ++batches;  // each batch dropped before the next
  }
  EXPECT_EQ(batches, 12);
  EXPECT_LE(seen.size(), 4u);  // prefetch + threads + 2 buffers at most, not one per batch
}

TEST_F(HostLoaderTest, EpochsDifferAndTheSameEpochRepeats) {
  const auto a = epoch("f32", SampleMode::kRandomStage, true, 0);
  expect_same(a, epoch("f32", SampleMode::kRandomStage, true, 0));
  const auto b = epoch("f32", SampleMode::kRandomStage, true, 1);
  bool differs = a.size() != b.size();
  for (std::size_t i = 0; !differs && i < a.size(); ++i)
    differs = a[i].keys != b[i].keys || std::memcmp(a[i].image.data(), b[i].image.data(), a[i].image.size() * 4) != 0;
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace segscale::loader
