// nnU-Net's batches from an nnU-Net store (loader/nnunet_loader.h): keyed draws make a batch a function of (seed,
// epoch, batch, rank) alone, so thread counts and resuming mid-epoch change nothing; validation batches are the
// sampler's boxes cut and turned into regions, nothing more; the forced-foreground slot always holds foreground;
// a malformed sample is named.
#include "loader/nnunet_loader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "../support/temp_dir.h"
#include "io/npy.h"
#include "store/nnunet_sample.h"
#include "store/shard_writer.h"
#include "transforms/nnunet_targets.h"
#include "util/error.h"

namespace segscale::loader {
namespace {

using segscale::testing::TempDir;
const std::vector<std::vector<int>> kRegions{{2, 3}, {1, 2, 3}, {3}};  // TC, WT, ET of nnU-Net's Dataset137 labels
const Int3 kShape{20, 18, 16};

// Three cases of 2 channels: a body (-1 around it, as nnU-Net's crop leaves the background) holding a tumour.
void make_store(const std::filesystem::path& dir, bool break_one = false) {
  const std::vector<std::string> keys{"a", "b", "c"};
  store::write_or_check_settings(dir, {{"format_version", 1}, {"mode", "nnunet"}, {"cases", keys}, {"cases_per_shard", 3}});
  store::ShardWriter w(dir, 0);
  std::mt19937 g(5);
  std::normal_distribution<float> n;
  const std::int64_t v = kShape[0] * kShape[1] * kShape[2];
  for (std::size_t k = 0; k < keys.size(); ++k) {
    std::vector<float> image(static_cast<std::size_t>(2 * v));
    for (auto& x : image) x = n(g);
    std::vector<std::int16_t> seg(static_cast<std::size_t>(v), 0);
    store::NnunetSampleMeta m;
    m.channels = 2;
    m.shape = kShape;
    m.class_locations.resize(3);
    for (std::int64_t i = 0; i < kShape[0]; ++i)
      for (std::int64_t j = 0; j < kShape[1]; ++j)
        for (std::int64_t l = 0; l < kShape[2]; ++l) {
          std::int16_t& s = seg[static_cast<std::size_t>((i * kShape[1] + j) * kShape[2] + l)];
          if (i < 2 || j < 2) s = -1;
          const std::int64_t ci = 5 + 3 * static_cast<std::int64_t>(k);
          if (i >= ci && i < ci + 4 && j >= 6 && j < 10 && l >= 4 && l < 8) s = static_cast<std::int16_t>(1 + (i + l) % 3);
          if (s > 0)  // dataset order here: WT, TC, ET
            for (std::size_t r = 0; r < 3; ++r) {
              const std::vector<int>& reg = r == 0 ? kRegions[1] : r == 1 ? kRegions[0] : kRegions[2];
              if (std::find(reg.begin(), reg.end(), s) != reg.end()) m.class_locations[r].push_back({i, j, l});
            }
        }
    std::string js = store::nnunet_sample_json(keys[k], m).dump();
    if (break_one && k == 1) js = "{\"image_shape\": [2, 20]}";
    const io::Bytes img = io::encode_npy("<f4", {2, kShape[0], kShape[1], kShape[2]}, {reinterpret_cast<const std::uint8_t*>(image.data()), image.size() * 4});
    const io::Bytes lab = io::encode_npy("<i2", {1, kShape[0], kShape[1], kShape[2]}, {reinterpret_cast<const std::uint8_t*>(seg.data()), seg.size() * 2});
    w.add(keys[k], keys[k], 0, {{"json", {reinterpret_cast<const std::uint8_t*>(js.data()), js.size()}}, {"image.npy", img}, {"label.npy", lab}});
  }
  w.commit();
  store::finalize_store(dir);
}

NnunetLoaderOptions options(bool augment, int threads) {
  NnunetLoaderOptions o;
  o.batch = 3;
  o.threads = threads;
  o.seed = 7;
  o.batches_per_epoch = 6;
  o.augment = augment;
  o.patch = {12, 12, 8};
  o.regions = kRegions;
  o.use_mask_for_norm = {true, false};
  return o;
}

std::vector<HostBatch> epoch(NnunetLoader& l, std::int64_t e, std::int64_t first = 0) {
  l.start_epoch(e, first);
  std::vector<HostBatch> out;
  while (auto b = l.next()) out.push_back(std::move(*b));
  return out;
}

bool same(const HostBatch& a, const HostBatch& b) {
  return a.keys == b.keys && a.image_shape == b.image_shape && a.label_shape == b.label_shape &&
         std::memcmp(a.image.data(), b.image.data(), a.image.size() * 4) == 0 && a.image.size() == b.image.size() &&
         std::memcmp(a.label.data(), b.label.data(), a.label.size()) == 0 && a.index == b.index;
}

class NnunetLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    make_store(dir_.path());
    store_ = std::make_shared<store::StoreReader>(dir_.path());
  }
  TempDir dir_;
  std::shared_ptr<store::StoreReader> store_;
  std::vector<std::size_t> all_{0, 1, 2};
};

TEST_F(NnunetLoaderTest, ABatchDependsOnItsKeysAloneNotOnThreadsOrWhereTheEpochStarts) {
  NnunetLoader one(store_, all_, options(true, 1)), three(store_, all_, options(true, 3));
  const auto a = epoch(one, 4), b = epoch(three, 4), tail = epoch(three, 4, 2);
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(tail.size(), 4u);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(same(a[i], b[i])) << i;
  for (std::size_t i = 0; i < tail.size(); ++i) EXPECT_TRUE(same(a[i + 2], tail[i])) << i;
  EXPECT_EQ(a[0].image_shape, (std::array<std::int64_t, 5>{3, 2, 12, 12, 8}));
  EXPECT_EQ(a[0].label_shape, (std::array<std::int64_t, 5>{3, 3, 12, 12, 8}));
  // Another epoch, another rank or another seed draws other batches.
  const auto c = epoch(one, 5);
  NnunetLoaderOptions r1 = options(true, 1);
  r1.rank = 1;
  NnunetLoader rank1(store_, all_, r1);
  const auto d = epoch(rank1, 4);
  EXPECT_FALSE(same(a[0], c[0]));
  EXPECT_FALSE(same(a[0], d[0]));
}

TEST_F(NnunetLoaderTest, ValidationBatchesAreTheSamplersBoxesAsRegionsWithoutAugmentation) {
  const NnunetLoaderOptions o = options(false, 2);
  NnunetLoader l(store_, all_, o);
  const auto batches = epoch(l, 3);
  NnunetSamplerConfig cfg;
  cfg.batch_size = 3;
  cfg.patch_size = cfg.final_patch_size = o.patch;
  std::vector<SamplerCase> cases;
  for (std::size_t i : all_) {
    const auto raw = store_->read(i);
    const auto m = store::nnunet_sample_meta(raw.json, "t");
    SamplerCase c;
    c.shape = m.shape;
    for (const auto& rows : m.class_locations) {
      auto& out = c.class_locations.emplace_back();
      for (const auto& r : rows) out.push_back({0, r[0], r[1], r[2]});
    }
    cases.push_back(c);
  }
  const std::int64_t pv = 12 * 12 * 8;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    NumpyDraws draws(nnunet_draw_seed(7, 0, 3, static_cast<std::int64_t>(b), 0, -1, 0));
    const auto boxes = nnunet_batch(draws, cases, cfg);
    for (std::size_t j = 0; j < boxes.size(); ++j) {
      const auto raw = store_->read(boxes[j].case_index);
      store::NnunetSampleArrays arr;
      store::NnunetSampleMeta m = store::nnunet_sample_meta(raw.json, "t");
      store::nnunet_sample_arrays(raw.image, raw.label, m, "t", arr);
      std::vector<float> img(static_cast<std::size_t>(2 * pv));
      std::vector<std::int16_t> seg(static_cast<std::size_t>(pv));
      crop_and_pad(arr.image, 2, arr.seg, m.shape, boxes[j], img.data(), seg.data());
      transforms::nnunet_remove_label(seg.data(), seg.size());
      const auto regions = transforms::nnunet_regions(seg.data(), seg.size(), kRegions);
      EXPECT_EQ(0, std::memcmp(batches[b].image.data() + j * 2 * pv, img.data(), img.size() * 4)) << b << " " << j;
      EXPECT_EQ(0, std::memcmp(batches[b].label.data() + j * 3 * pv, regions.data(), regions.size())) << b << " " << j;
      EXPECT_EQ(batches[b].keys[j], std::string(1, static_cast<char>('a' + boxes[j].case_index)));
    }
  }
}

TEST_F(NnunetLoaderTest, TheForcedSlotIsCentredOnForeground) {
  // Without augmentation a box is cut around its centre voxel (patch // 2 inside it): in the forced slot (batch 3:
  // slots 0 and 1 anywhere, slot 2 forced) that voxel is a stored foreground voxel, so WT holds it every time;
  // the free slots' centres land on background too (the check tells the two apart).
  NnunetLoaderOptions o = options(false, 2);
  o.batches_per_epoch = 30;
  NnunetLoader l(store_, all_, o);
  const std::int64_t pv = 12 * 12 * 8, centre = (6 * 12 + 6) * 8 + 4;
  int free_background = 0;
  for (const auto& b : epoch(l, 0)) {
    EXPECT_EQ(b.label[static_cast<std::size_t>((2 * 3 + 1) * pv + centre)], 1) << b.index;
    for (int j = 0; j < 2; ++j) free_background += b.label[static_cast<std::size_t>((j * 3 + 1) * pv + centre)] == 0;
  }
  EXPECT_GT(free_background, 10);
}

TEST(NnunetLoader, AMalformedSampleIsNamed) {
  TempDir dir;
  make_store(dir.path(), true);
  auto st = std::make_shared<store::StoreReader>(dir.path());
  try {
    NnunetLoader l(st, {0, 1, 2}, options(true, 1));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("b.json: "), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace segscale::loader
