#include "loader/nnunet_loader.h"

#include <fmt/format.h>

#include <algorithm>

#include "store/nnunet_sample.h"
#include "transforms/nnunet_chain.h"
#include "transforms/nnunet_targets.h"
#include "util/error.h"

namespace segscale::loader {

std::uint32_t nnunet_draw_seed(std::uint64_t seed, std::uint64_t stream, std::int64_t epoch, std::int64_t batch, int rank, int slot, int which) {
  std::uint64_t z = seed;
  for (std::uint64_t v : {stream, static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(batch), static_cast<std::uint64_t>(rank),
                          static_cast<std::uint64_t>(slot + 1), static_cast<std::uint64_t>(which)}) {
    z += 0x9E3779B97F4A7C15ULL ^ v;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
  }
  return static_cast<std::uint32_t>(z);
}

NnunetLoader::NnunetLoader(std::shared_ptr<const store::StoreReader> store, std::vector<std::size_t> subset, NnunetLoaderOptions options)
    : store_(std::move(store)), subset_(std::move(subset)), o_(std::move(options)) {
  if (o_.batch < 1) throw UsageError("batch size must be at least 1");
  if (o_.batches_per_epoch < 1) throw UsageError("--steps-per-epoch must be at least 1");
  if (subset_.empty()) throw Error("loader: no cases to load (empty split)");
  if (o_.regions.empty()) throw UsageError("nnU-Net loader: no target regions");
  if (o_.use_mask_for_norm.empty()) throw UsageError("nnU-Net loader: the plan names no channels");
  sampler_.batch_size = o_.batch;
  sampler_.final_patch_size = o_.patch;
  sampler_.patch_size = o_.augment ? nnunet_initial_patch_size(o_.patch) : o_.patch;
  sampler_.oversample_foreground_percent = o_.oversample_foreground_percent;
  for (std::size_t i : subset_) {
    const io::Bytes json = store_->read_json_member(i);  // shapes and foreground voxels only: not the images
    const std::string where = store_->samples()[i].key + ".json";
    const store::NnunetSampleMeta m = store::nnunet_sample_meta(json, where);
    if (m.channels != static_cast<int>(o_.use_mask_for_norm.size()))
      throw Error(fmt::format("{}: {} channels, the plan has {}", where, m.channels, o_.use_mask_for_norm.size()));
    SamplerCase c;
    c.shape = m.shape;
    for (const auto& rows : m.class_locations) {
      auto& out = c.class_locations.emplace_back();
      out.reserve(rows.size());
      for (const auto& r : rows) out.push_back({0, r[0], r[1], r[2]});
    }
    cases_.push_back(std::move(c));
  }
}

NnunetLoader::~NnunetLoader() { prefetch_.stop(); }

void NnunetLoader::start_epoch(std::int64_t epoch, std::int64_t first_batch) {
  prefetch_.start(first_batch, o_.batches_per_epoch, o_.threads, o_.prefetch, [this, epoch](std::int64_t b, int) { return build(epoch, b); });
}

std::optional<HostBatch> NnunetLoader::next() { return prefetch_.next(); }

HostBatch NnunetLoader::build(std::int64_t epoch, std::int64_t b) const {
  NumpyDraws draws(nnunet_draw_seed(o_.seed, o_.stream, epoch, b, o_.rank, -1, 0));
  const std::vector<PatchBox> boxes = nnunet_batch(draws, cases_, sampler_);
  const int channels = static_cast<int>(o_.use_mask_for_norm.size());
  const Int3& p = o_.patch;
  const std::int64_t pv = p[0] * p[1] * p[2];
  const std::int64_t regions = static_cast<std::int64_t>(o_.regions.size());
  HostBatch out;
  out.index = b;
  const std::int64_t n = static_cast<std::int64_t>(boxes.size());
  transforms::NnunetAugmentSettings settings;
  settings.patch = {p[0], p[1], p[2]};
  settings.use_mask_for_norm = o_.use_mask_for_norm;
  settings.regions = o_.regions;
  store::StoreReader::Raw raw;
  store::NnunetSampleArrays arrays;
  std::vector<float> img_patch;
  std::vector<std::int16_t> seg_patch;
  for (std::int64_t j = 0; j < n; ++j) {
    const PatchBox& box = boxes[static_cast<std::size_t>(j)];
    const std::size_t sample = subset_[box.case_index];
    const store::SampleRef& ref = store_->samples()[sample];
    store_->read_into(sample, raw);
    const SamplerCase& c = cases_[box.case_index];
    store::NnunetSampleMeta shape;  // what the arrays must be (checked against their npy headers)
    shape.shape = c.shape;
    shape.channels = channels;
    store::nnunet_sample_arrays(raw.image, raw.label, shape, ref.key, arrays);
    if (j == 0) {
      out.image_shape = {n, channels, p[0], p[1], p[2]};
      out.label_shape = {n, regions, p[0], p[1], p[2]};
      out.image.resize(static_cast<std::size_t>(n * channels * pv));
      out.label.resize(static_cast<std::size_t>(n * regions * pv));
    }
    float* img_dst = out.image.data() + j * channels * pv;
    std::uint8_t* lab_dst = out.label.data() + j * regions * pv;
    if (o_.augment) {
      const transforms::LoadedPatch in{arrays.image, channels, arrays.seg, {c.shape[0], c.shape[1], c.shape[2]}, {box.lbs[0], box.lbs[1], box.lbs[2]},
                                       {sampler_.patch_size[0], sampler_.patch_size[1], sampler_.patch_size[2]}};
      transforms::NnunetReplayDraws aug(nnunet_draw_seed(o_.seed, o_.stream, epoch, b, o_.rank, static_cast<int>(j), 1),
                                        nnunet_draw_seed(o_.seed, o_.stream, epoch, b, o_.rank, static_cast<int>(j), 2));
      const transforms::NnunetAugmented a = transforms::nnunet_augment(in, settings, aug);
      std::copy(a.image.begin(), a.image.end(), img_dst);
      std::copy(a.targets.front().begin(), a.targets.front().end(), lab_dst);  // 0/1 per region
    } else {
      // nnU-Net's validation transforms: the box as cut (image padded with 0, segmentation with -1), -1 -> 0, regions.
      img_patch.resize(static_cast<std::size_t>(channels * pv));
      seg_patch.resize(static_cast<std::size_t>(pv));
      crop_and_pad(arrays.image, channels, arrays.seg, c.shape, box, img_patch.data(), seg_patch.data());
      transforms::nnunet_remove_label(seg_patch.data(), seg_patch.size());
      const auto r = transforms::nnunet_regions(seg_patch.data(), seg_patch.size(), o_.regions);
      std::copy(img_patch.begin(), img_patch.end(), img_dst);
      std::copy(r.begin(), r.end(), lab_dst);
    }
    out.keys.push_back(ref.case_key);
  }
  return out;
}

}  // namespace segscale::loader
