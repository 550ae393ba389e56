#include "loader/host_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "loader/sample_decode.h"
#include "transforms/intensity.h"
#include "transforms/load.h"
#include "transforms/spatial.h"
#include "util/error.h"

namespace segscale::loader {
namespace {
// Batches alive at once: queued (prefetch), being built (threads), held by the consumer (one or two).
std::shared_ptr<BufferPool> make_pool(const HostLoaderOptions& o) {
  return std::make_shared<BufferPool>(static_cast<std::size_t>(std::max(0, o.prefetch) + std::max(1, o.threads) + 2));
}
}  // namespace

SampleMode training_mode(const store::StoreReader& store) {
  const auto& settings = store.manifest()["settings"];
  return settings.value("mode", "") == "cache" ? SampleMode::kRandomStage : SampleMode::kAsStored;
}

namespace {
void check_samples_per_copy(const transforms::Pipeline& p) {
  if (p.samples_per_copy() > 1)
    throw UsageError(fmt::format("the loader takes rand_crop_by_pos_neg_label with num_samples 1, not {} (one sample per case and epoch; "
                                 "raise --batch for more crops per step)",
                                 p.samples_per_copy()));
}
}  // namespace

HostLoader::HostLoader(std::shared_ptr<const store::StoreReader> store, std::vector<std::size_t> subset, HostLoaderOptions options)
    : store_(std::move(store)), subset_(std::move(subset)), o_(std::move(options)), pool_(make_pool(o_)) {
  if (o_.batch < 1) throw UsageError("batch size must be at least 1");
  if (subset_.empty()) throw Error("loader: no samples to load (empty split)");
  check_samples_per_copy(o_.pipeline);
}

HostLoader::HostLoader(std::shared_ptr<const data::Catalog> catalog, std::vector<std::size_t> subset, HostLoaderOptions options)
    : catalog_(std::move(catalog)), subset_(std::move(subset)), o_(std::move(options)), pool_(make_pool(o_)) {
  if (o_.batch < 1) throw UsageError("batch size must be at least 1");
  if (subset_.empty()) throw Error("loader: no cases to load (empty split)");
  check_samples_per_copy(o_.pipeline);
}

std::string HostLoader::key_of(std::size_t pos) const {
  return catalog_ ? catalog_->training[subset_[pos]].key : store_->samples()[subset_[pos]].key;
}

HostLoader::~HostLoader() { prefetch_.stop(); }

std::int64_t HostLoader::samples_per_epoch() const {
  return static_cast<std::int64_t>(
      distributed_order(static_cast<std::int64_t>(subset_.size()), o_.seed, 0, false, o_.rank, o_.world, o_.drop_last).size());
}

std::int64_t HostLoader::batches_per_epoch() const { return (samples_per_epoch() + o_.batch - 1) / o_.batch; }

void HostLoader::start_epoch(std::int64_t epoch, std::int64_t first_batch) {
  prefetch_.stop();  // the workers read order_ and epoch_: stopped before they change
  epoch_ = epoch;
  order_ = distributed_order(static_cast<std::int64_t>(subset_.size()), o_.seed, epoch, o_.shuffle, o_.rank, o_.world, o_.drop_last);
  const std::int64_t end = (static_cast<std::int64_t>(order_.size()) + o_.batch - 1) / o_.batch;
  const int n = std::max(1, o_.threads);
  scratch_.resize(static_cast<std::size_t>(n));  // kept across epochs: their buffers are already faulted in
  prefetch_.start(first_batch, end, n, o_.prefetch, [this](std::int64_t b, int worker) { return build(b, scratch_[static_cast<std::size_t>(worker)]); });
}

transforms::Pipeline HostLoader::validation_pipeline() const {
  // The case study's validation chain after the cached stage: CenterSpatialCropd(roi), NormalizeIntensityd.
  transforms::Pipeline p;
  p.label_map = o_.pipeline.label_map;
  if (o_.mode == SampleMode::kCenterCrop) p.steps.push_back(transforms::CenterCropStep{o_.roi});
  p.steps.push_back(transforms::NormalizeStep{});
  return p;
}

transforms::Sample HostLoader::load(std::size_t pos) {
  const data::Case& c = catalog_->training[subset_[pos]];
  const auto& map = data::label_map_preset(o_.pipeline.label_map);
  transforms::Sample raw;
  try {
    raw.image = transforms::load_image(c.images);
    raw.label = transforms::load_label(c.label, map);
  } catch (const Error& e) {
    throw Error(fmt::format("case {}: {}", c.key, e.what()));
  }
  transforms::Sample s;
  if (o_.mode == SampleMode::kRandomStage) {
    transforms::SampleRng rng(o_.seed, c.key, static_cast<std::uint64_t>(epoch_));
    s = transforms::run_single_copy(o_.pipeline, raw, rng);
  } else {
    s = transforms::run_cached_stage(validation_pipeline(), transforms::run_cached_stage(o_.pipeline, std::move(raw)));
  }
  s.label = transforms::label_channels_u8(*s.label, map);  // as stores hold labels
  return s;
}

std::pair<float*, std::uint8_t*> HostLoader::Filling::slot(std::int64_t channels, const transforms::Shape3& size, const std::string& key) {
  auto& b = batch;
  if (count == 0) {
    b.image_shape = {capacity, channels, size[0], size[1], size[2]};
    b.label_shape = {capacity, 3, size[0], size[1], size[2]};
    b.image = b.pool->floats(static_cast<std::size_t>(capacity * channels * size[0] * size[1] * size[2]));
    b.label = b.pool->bytes(static_cast<std::size_t>(capacity * 3 * size[0] * size[1] * size[2]));
  } else if (channels != b.image_shape[1] || size[0] != b.image_shape[2] || size[1] != b.image_shape[3] || size[2] != b.image_shape[4]) {
    throw Error(fmt::format("sample {} has shape {}x{}x{}x{}, the batch's first has {}x{}x{}x{}: crop roi larger than the volume?", key, channels,
                            size[0], size[1], size[2], b.image_shape[1], b.image_shape[2], b.image_shape[3], b.image_shape[4]));
  }
  const std::int64_t voxels = size[0] * size[1] * size[2];
  return {b.image.data() + count * channels * voxels, b.label.data() + count * 3 * voxels};
}

void HostLoader::Filling::add(const transforms::Sample& s, const std::string& key) {
  const auto [image, label] = slot(s.image.channels, s.image.size, key);
  std::memcpy(image, s.image.data.data(), s.image.data.size() * sizeof(float));
  std::memcpy(label, s.label->data.data(), s.label->data.size());
}

// A store's sample straight into the batch: the crop window read from the stored bytes and the rest of the
// chain fused (transforms/window_stage.h); a chain in another order goes through the generic transforms.
void HostLoader::add_stored(std::size_t pos, Filling& f, Scratch& scratch) {
  const std::size_t i = subset_[pos];
  const auto& ref = store_->samples()[i];
  const std::string where = fmt::format("{}, sample {}", store::shard_file(ref.shard), ref.key);
  store_->read_into(i, scratch.raw);
  const transforms::StoredArrays arrays = stored_arrays(scratch.raw, where);
  try {
    std::optional<transforms::Pipeline> validation;
    const transforms::Pipeline* p = &o_.pipeline;
    std::vector<transforms::StepDraw> draws;
    if (o_.mode == SampleMode::kRandomStage) {
      transforms::SampleRng rng(o_.seed, ref.case_key, static_cast<std::uint64_t>(epoch_));
      const auto centres = transforms::centres_for_stored(o_.pipeline, arrays);  // a leading rand_crop_by_pos_neg_label's
      draws = transforms::draw_random_stage(o_.pipeline, arrays.size, rng, centres ? &*centres : nullptr);
    } else if (o_.mode != SampleMode::kAsStored) {
      validation = validation_pipeline();
      p = &*validation;
      transforms::SampleRng unused(0, ref.case_key, 0);  // the validation chain draws nothing
      draws = transforms::draw_steps(*p, 0, arrays.size, unused);
    }
    if (const auto plan = o_.fused ? transforms::plan_window(*p, draws, arrays.size) : std::nullopt) {
      const auto [image, label] = f.slot(arrays.channels, plan->window.size, ref.key);
      transforms::run_window(*plan, arrays, image, label, "image");
      return;
    }
    transforms::Sample s = decode_sample(scratch.raw, where);
    if (o_.mode == SampleMode::kRandomStage) {
      transforms::SampleRng rng(o_.seed, ref.case_key, static_cast<std::uint64_t>(epoch_));
      s = transforms::run_random_stage(o_.pipeline, s, rng);
    } else if (validation) {
      s = transforms::run_cached_stage(*validation, std::move(s));
    }
    f.add(s, ref.key);
  } catch (const Error& e) {
    const std::string what = e.what();  // e.g. non-finite voxels met by the normalisation; named once
    throw Error(what.rfind(where, 0) == 0 ? what : where + ": " + what);
  }
}

HostBatch HostLoader::build(std::int64_t b, Scratch& scratch) {
  const std::int64_t first = b * o_.batch;
  const std::int64_t last = std::min<std::int64_t>(first + o_.batch, static_cast<std::int64_t>(order_.size()));
  Filling f;
  f.batch.index = b;
  f.batch.pool = pool_;
  f.capacity = last - first;
  for (std::int64_t k = first; k < last; ++k) {
    const std::size_t pos = static_cast<std::size_t>(order_[k]);
    try {
      if (store_) {
        add_stored(pos, f, scratch);
      } else {
        const transforms::Sample s = load(pos);
        if (!s.label || s.label->channels != 3 || s.label->size != s.image.size)
          throw Error(fmt::format("sample {}: label does not have 3 channels of the image's grid", key_of(pos)));
        f.add(s, key_of(pos));
      }
      f.batch.keys.push_back(key_of(pos));
      ++f.count;
    } catch (const Error& e) {
      if (!o_.skip_bad) throw Error(fmt::format("{} (--skip-bad would skip this sample and go on)", e.what()));
      std::fprintf(stderr, "\nsegscale: skipping sample: %s\n", e.what());
    }
  }
  HostBatch& batch = f.batch;
  if (f.count == 0) {
    HostBatch none;
    none.index = b;
    return none;
  }
  batch.image_shape[0] = batch.label_shape[0] = f.count;  // fewer than capacity when samples were skipped
  batch.image.resize(static_cast<std::size_t>(f.count * batch.image_shape[1] * batch.image_shape[2] * batch.image_shape[3] * batch.image_shape[4]));
  batch.label.resize(static_cast<std::size_t>(f.count * 3 * batch.image_shape[2] * batch.image_shape[3] * batch.image_shape[4]));
  return std::move(batch);
}

std::optional<HostBatch> HostLoader::next() { return prefetch_.next(); }

}  // namespace segscale::loader
