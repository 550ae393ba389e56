// The device cache against the host loader on CPU: the same batches (keys, images to 1e-5, labels exactly)
// for several seeds, epochs and ranks, in training and validation modes; shard placement; refusals.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "../support/temp_dir.h"
#include "../support/test_stores.h"
#include "data/synth.h"
#include "loader/device_cache.h"
#include "loader/loader.h"
#include "prep/prep.h"
#include "util/error.h"

namespace segscale::loader {
namespace {

namespace fs = std::filesystem;
using segscale::testing::TempDir;

transforms::Pipeline small_chain() {
  transforms::Pipeline p = transforms::Pipeline::case_study();
  p.label_map = "msd";
  std::get<transforms::RandCropStep>(p.steps[2]).roi = {16, 12, 10};
  return p;
}

// Five synthetic cases, prepped as a --cache store (float32 or float16) and a --copies store.
class DeviceCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    segscale::testing::make_test_stores(dir_->path(), 5, small_chain());
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::shared_ptr<store::StoreReader> open(const char* name) { return std::make_shared<store::StoreReader>(*dir_ / name); }
  static std::vector<std::size_t> all(const store::StoreReader& s) {
    std::vector<std::size_t> v(s.samples().size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = i;
    return v;
  }
  static LoaderOptions options(std::uint64_t seed, SampleMode mode = SampleMode::kRandomStage) {
    LoaderOptions o;
    o.batch = 2;
    o.threads = 1;
    o.seed = seed;
    o.mode = mode;
    o.pipeline = small_chain();
    o.roi = {14, 12, 8};
    return o;
  }
  // Every batch of `epochs` epochs from both executors: same keys, images within 1e-5, labels equal.
  static void expect_same_batches(const char* store_name, const std::vector<std::size_t>& subset, const LoaderOptions& o, int epochs) {
    auto st = open(store_name);
    Loader host(st, subset, o);
    DeviceCache dev(st, subset, o, torch::kCPU);
    ASSERT_EQ(dev.batches_per_epoch(), host.batches_per_epoch());
    for (int e = 0; e < epochs; ++e) {
      host.start_epoch(e);
      dev.start_epoch(e);
      int n = 0;
      while (auto h = host.next()) {
        auto d = dev.next();
        ASSERT_TRUE(d.has_value());
        EXPECT_EQ(d->keys, h->keys);
        EXPECT_EQ(d->index, h->index);
        ASSERT_EQ(d->image.sizes(), h->image.sizes());
        EXPECT_LE((d->image - h->image).abs().max().item<float>(), 1e-5f) << "epoch " << e << " batch " << n;
        EXPECT_TRUE(torch::equal(d->label, h->label)) << "epoch " << e << " batch " << n;
        ++n;
      }
      EXPECT_FALSE(dev.next().has_value());
      EXPECT_EQ(n, host.batches_per_epoch());
    }
  }
  static TempDir* dir_;
};
TempDir* DeviceCacheTest::dir_ = nullptr;

TEST_F(DeviceCacheTest, RandomStageEqualsHostLoaderForSeedsAndEpochs) {
  auto st = open("f32");
  for (std::uint64_t seed : {0u, 7u, 123u}) expect_same_batches("f32", all(*st), options(seed), 3);
}

TEST_F(DeviceCacheTest, Float16StoreEqualsHostLoader) {
  auto st = open("f16");
  expect_same_batches("f16", all(*st), options(5), 2);
  DeviceCache dev(st, all(*st), options(5), torch::kCPU);
  // float16 images (2 bytes a voxel) and one label byte a voxel.
  std::int64_t voxels = 0, channels = 4;
  for (const auto& r : st->samples()) voxels += static_cast<std::int64_t>(r.label.size / 3);
  EXPECT_NEAR(static_cast<double>(dev.bytes()), static_cast<double>(voxels * (2 * channels + 1)), 1000.0 * 5);
  EXPECT_NE(dev.describe().find("5 cases"), std::string::npos) << dev.describe();
  EXPECT_NE(dev.describe().find("float16 images"), std::string::npos) << dev.describe();
}

TEST_F(DeviceCacheTest, RanksSeeTheirDistributedSamplerSliceAsTheHostLoader) {
  auto st = open("f32");
  for (int rank : {0, 1}) {
    LoaderOptions o = options(3);
    o.rank = rank;
    o.world = 2;
    o.batch = 1;
    expect_same_batches("f32", all(*st), o, 2);
  }
}

TEST_F(DeviceCacheTest, ValidationModesEqualHostLoader) {
  auto st = open("f32");
  LoaderOptions crop = options(0, SampleMode::kCenterCrop);
  crop.shuffle = false;
  expect_same_batches("f32", all(*st), crop, 1);
  LoaderOptions whole = options(0, SampleMode::kWhole);
  whole.shuffle = false;
  whole.batch = 1;
  expect_same_batches("f32", all(*st), whole, 1);
}

TEST_F(DeviceCacheTest, ResumesMidEpochAtTheSameBatch) {
  auto st = open("f32");
  DeviceCache a(st, all(*st), options(9), torch::kCPU), b(st, all(*st), options(9), torch::kCPU);
  a.start_epoch(2);
  a.next();
  auto second = a.next();
  b.start_epoch(2, 1);
  auto resumed = b.next();
  ASSERT_TRUE(second && resumed);
  EXPECT_EQ(resumed->keys, second->keys);
  EXPECT_TRUE(torch::equal(resumed->image, second->image));
}

TEST_F(DeviceCacheTest, ShardHoldsOnlyTheRanksPartitionAndCoversAllCases) {
  auto st = open("f32");
  std::set<std::string> seen;
  for (int rank : {0, 1}) {
    LoaderOptions o = options(4);
    o.rank = rank;
    o.world = 2;
    o.batch = 1;
    DeviceCache dev(st, all(*st), o, torch::kCPU, CachePlacement::kShard);
    // MONAI partition_dataset(5 cases, 2, even_divisible): rank 0 holds cases 0, 2, 4; rank 1 holds 1, 3 and 0 again.
    EXPECT_EQ(dev.cases(), 3);
    std::set<std::string> expected;
    for (std::size_t i : rank == 0 ? std::vector<std::size_t>{0, 2, 4} : std::vector<std::size_t>{1, 3, 0}) expected.insert(st->samples()[i].key);
    EXPECT_EQ(dev.batches_per_epoch(), 3);
    for (int e = 0; e < 2; ++e) {
      dev.start_epoch(e);
      std::multiset<std::string> keys;
      while (auto b = dev.next()) keys.insert(b->keys.begin(), b->keys.end());
      EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), expected) << "rank " << rank << " epoch " << e;
      seen.insert(keys.begin(), keys.end());
    }
  }
  EXPECT_EQ(seen.size(), 5u);
}

TEST_F(DeviceCacheTest, RefusesWhatItCannotServe) {
  auto copies = open("copies");
  EXPECT_THROW(DeviceCache(copies, all(*copies), options(0), torch::kCPU), UsageError);
  auto st = open("f32");
  LoaderOptions no_crop = options(0);
  no_crop.pipeline.steps.erase(no_crop.pipeline.steps.begin() + 2);  // random stage starts with the flip
  EXPECT_THROW(DeviceCache(st, all(*st), no_crop, torch::kCPU), UsageError);
  LoaderOptions shard = options(0);
  shard.world = 6;
  EXPECT_THROW(DeviceCache(st, all(*st), shard, torch::kCPU, CachePlacement::kShard), UsageError);
  EXPECT_THROW(DeviceCache(st, {}, options(0), torch::kCPU), Error);
}

TEST(DeviceCacheFit, NamesNeededFreeAndAlternatives) {
  check_cache_fits(100, 200, "cpu");
  check_cache_fits(100, std::nullopt, "cuda:0");
  try {
    check_cache_fits(10'400'000'000ull, 8'100'000'000ull, "cuda:0");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    for (const char* s : {"10.4 GB", "8.1 GB", "cuda:0", "--device-cache-mode shard", "--dtype float16", "without --device-cache"})
      EXPECT_NE(m.find(s), std::string::npos) << s << " in " << m;
  }
}

}  // namespace
}  // namespace segscale::loader

namespace segscale::loader {
namespace {

TEST_F(DeviceCacheTest, CudaBatchesEqualCpuBatches) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* name : {"f32", "f16"}) {
    auto st = open(name);
    DeviceCache cpu(st, all(*st), options(11), torch::kCPU), gpu(st, all(*st), options(11), torch::Device(torch::kCUDA, 0));
    EXPECT_EQ(gpu.bytes(), cpu.bytes());
    for (int e = 0; e < 2; ++e)
      for (std::int64_t b = 0; b < cpu.batches_per_epoch(); ++b) {
        const Batch c = cpu.build(e, b), g = gpu.build(e, b);
        ASSERT_TRUE(g.image.is_cuda());
        EXPECT_EQ(g.keys, c.keys);
        EXPECT_LE((g.image.cpu() - c.image).abs().max().item<float>(), 1e-5f) << name << " epoch " << e << " batch " << b;
        EXPECT_TRUE(torch::equal(g.label.cpu(), c.label));
      }
  }
}

// nnU-Net's chain in small: the foreground-oversampled crop (foreground index held per case on the host) and flips
// of one axis, a list of axes and all axes, batched on the device as the host loader builds them.
transforms::Pipeline pos_neg_chain() {
  transforms::Pipeline p;
  p.label_map = "msd";
  transforms::RandCropPosNegStep crop;
  crop.roi = {12, 10, 8};
  crop.pos = 1;
  crop.neg = 2;
  transforms::FlipAxes yz;
  yz.axis = {false, true, true};
  p.steps = {transforms::SpacingStep{}, transforms::OrientationStep{}, crop, transforms::RandFlipStep{0.5, 0},
             transforms::RandFlipStep{0.5, yz}, transforms::RandFlipStep{0.5, transforms::FlipAxes::all()}, transforms::NormalizeStep{},
             transforms::RandScaleStep{0.1, 1.0}, transforms::RandShiftStep{0.1, 1.0}};
  return p;
}

class DeviceCachePosNegTest : public DeviceCacheTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    segscale::testing::make_test_stores(dir_->path(), 5, pos_neg_chain());
  }
};

TEST_F(DeviceCachePosNegTest, PosNegCropAndFlipListsEqualHostLoader) {
  for (std::uint64_t seed : {0u, 9u}) {
    LoaderOptions o = options(seed);
    o.pipeline = pos_neg_chain();
    for (const char* name : {"f32", "f16"}) {
      SCOPED_TRACE(::testing::Message() << name << " seed " << seed);
      expect_same_batches(name, all(*open(name)), o, 3);
    }
  }
  LoaderOptions o = options(1);
  o.pipeline = pos_neg_chain();
  std::get<transforms::RandCropPosNegStep>(o.pipeline.steps[2]).num_samples = 2;
  auto st = open("f32");
  EXPECT_THROW(DeviceCache(st, all(*st), o, torch::kCPU), UsageError);
}

}  // namespace
}  // namespace segscale::loader
