#include "loader/device_cache.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <map>
#include <set>

#include "loader/sample_decode.h"
#include "util/error.h"
#include "util/memory.h"
#include "util/plural.h"

namespace segscale::loader {
namespace {

std::string gigabytes(double bytes) { return bytes >= 1e9 ? fmt::format("{:.1f} GB", bytes / 1e9) : fmt::format("{:.1f} MB", bytes / 1e6); }

// Bytes free for new tensors on `device`: the CUDA caching allocator's view, or the host's MemAvailable.
std::optional<std::uint64_t> free_bytes(const torch::Device& device) {
  if (device.is_cuda()) return compat::cuda_free_bytes(device.has_index() ? device.index() : 0);
  return available_memory_bytes();
}

bool is_crop(const transforms::Step& s) {
  return std::holds_alternative<transforms::RandCropStep>(s) || std::holds_alternative<transforms::CenterCropStep>(s) ||
         std::holds_alternative<transforms::RandCropPosNegStep>(s);
}

// MONAI's NormalizeIntensity on a batch [B, C, X, Y, Z], as transforms::normalize_intensity per sample:
// mean and population std of the selected voxels in float64, rounded to float32; std 0 counts as 1; a
// sample (channel) without selected voxels is left unchanged.
torch::Tensor normalize_batch(const torch::Tensor& x, bool nonzero, bool channel_wise) {
  const std::vector<std::int64_t> dims = channel_wise ? std::vector<std::int64_t>{2, 3, 4} : std::vector<std::int64_t>{1, 2, 3, 4};
  const torch::Tensor mask = nonzero ? x.ne(0) : torch::ones_like(x, torch::kBool);
  const torch::Tensor xd = x.to(torch::kFloat64).masked_fill(mask.logical_not(), 0);
  const torch::Tensor count = mask.sum(dims, /*keepdim=*/true, torch::kFloat64);
  const torch::Tensor safe = count.clamp_min(1);
  const torch::Tensor mean = xd.sum(dims, true) / safe;
  const torch::Tensor dev = (xd - mean).masked_fill(mask.logical_not(), 0);
  const torch::Tensor mean_f = mean.to(torch::kFloat32);
  torch::Tensor std_f = (dev * dev).sum(dims, true).div(safe).sqrt().to(torch::kFloat32);
  std_f = torch::where(std_f.eq(0), torch::ones_like(std_f), std_f);
  return torch::where(mask.logical_and(count.gt(0)), (x - mean_f) / std_f, x);
}

// Per-sample flags or values as a [B, 1, ...] tensor broadcasting over a batch of `dims` dimensions.
torch::Tensor per_sample(const std::vector<float>& v, std::int64_t dims, const torch::Device& device) {
  std::vector<std::int64_t> shape(static_cast<std::size_t>(dims), 1);
  shape[0] = static_cast<std::int64_t>(v.size());
  return torch::tensor(v, torch::kFloat32).view(shape).to(device);
}

}  // namespace

void check_cache_fits(std::uint64_t need, std::optional<std::uint64_t> free, const std::string& device) {
  if (free && need > *free)
    throw Error(fmt::format("--device-cache: the cache needs about {} on {} but only {} free; alternatives: --device-cache-mode shard "
                            "(each rank holds 1/world of the cases), a float16 store (segscale prep --dtype float16), or the host "
                            "loader (train without --device-cache)",
                            gigabytes(static_cast<double>(need)), device, gigabytes(static_cast<double>(*free))));
}

DeviceCache::DeviceCache(std::shared_ptr<const store::StoreReader> store, std::vector<std::size_t> subset, LoaderOptions options,
                         torch::Device device, CachePlacement placement)
    : o_(std::move(options)), device_(device), placement_(placement) {
  if (o_.batch < 1) throw UsageError("batch size must be at least 1");
  if (subset.empty()) throw Error("device cache: no samples to load (empty split)");
  const nlohmann::json& settings = store->manifest()["settings"];
  if (settings.value("mode", "") != "cache")
    throw UsageError("--device-cache needs a --cache store (segscale prep --cache); a --copies store's samples are final, use the host loader");
  dtype_name_ = settings.value("image_dtype", "float32");
  switch (o_.mode) {
    case SampleMode::kRandomStage:
      steps_ = o_.pipeline;
      first_step_ = steps_.cached_prefix();
      break;
    case SampleMode::kCenterCrop:  // the case study's validation chain after the cached stage
      steps_.steps = {transforms::CenterCropStep{o_.roi}, transforms::NormalizeStep{}};
      break;
    case SampleMode::kWhole:
      steps_.steps = {transforms::NormalizeStep{}};
      break;
    case SampleMode::kAsStored:
      throw UsageError("--device-cache needs a --cache store");
  }
  if (steps_.samples_per_copy() > 1)
    throw UsageError(fmt::format("--device-cache takes rand_crop_by_pos_neg_label with num_samples 1, not {}", steps_.samples_per_copy()));
  const transforms::RandCropPosNegStep* pos_neg = o_.mode == SampleMode::kRandomStage ? steps_.pos_neg_crop() : nullptr;
  // One batch tensor needs one shape: the first steps that run must crop, unless every batch has one sample.
  if (o_.batch > 1 && (first_step_ >= steps_.steps.size() || !is_crop(steps_.steps[first_step_])))
    throw UsageError("--device-cache: the pipeline's random stage must start with a crop to batch cases of different sizes");

  // This rank's cases.
  const auto n = static_cast<std::int64_t>(subset.size());
  if (placement_ == CachePlacement::kShard) {
    if (n < o_.world) throw UsageError(fmt::format("--device-cache-mode shard: {} for {} ranks", plural(n, "case"), o_.world));
    members_ = distributed_order(n, o_.seed, 0, /*shuffle=*/false, o_.rank, o_.world, o_.drop_last);
  } else {
    for (std::int64_t i = 0; i < n; ++i) members_.push_back(i);
  }
  const std::set<std::int64_t> unique(members_.begin(), members_.end());

  // Does it fit? Images in the store's dtype, labels one byte per voxel (a third of the stored three channels).
  std::uint64_t need = 0;
  for (std::int64_t i : unique) {
    const auto& ref = store->samples()[subset[static_cast<std::size_t>(i)]];
    need += ref.image.size + ref.label.size / 3;
  }
  check_cache_fits(need, free_bytes(device_), device_.str());

  // Read, check and move every case once; members_ becomes indices into cases_.
  std::map<std::int64_t, std::int64_t> slot;
  const auto dtype = dtype_name_ == "float16" ? torch::kFloat16 : torch::kFloat32;
  for (std::int64_t i : unique) {
    const std::size_t index = subset[static_cast<std::size_t>(i)];
    const auto& ref = store->samples()[index];
    const std::string where = fmt::format("{}, sample {}", store::shard_file(ref.shard), ref.key);
    transforms::Sample s = decode_sample(store->read(index), where);
    const auto& sz = s.image.size;
    torch::Tensor image = torch::from_blob(s.image.data.data(), {s.image.channels, sz[0], sz[1], sz[2]}, torch::kFloat32);
    if (!torch::isfinite(image).all().item<bool>())
      throw error_at(where, "non-finite voxel values; cannot normalise (the host loader stops on them too)");
    torch::Tensor label = torch::from_blob(s.label->data.data(), {3, sz[0], sz[1], sz[2]}, torch::kUInt8);
    if (!label.le(1).all().item<bool>()) throw error_at(where, "label channels hold values other than 0 and 1");
    Case c;
    c.image = image.to(device_, dtype, /*non_blocking=*/false, /*copy=*/true);  // owns its memory; float16 -> float32 -> float16 is exact
    c.label = (label[0] + label[1] * 2 + label[2] * 4).to(device_);
    c.key = ref.key;
    c.case_key = ref.case_key;
    c.size = sz;
    // The foreground index of a leading rand_crop_by_pos_neg_label, once per case on the host (runs of voxels).
    if (pos_neg)
      c.centres = std::make_shared<const transforms::CropCentres>(transforms::crop_centres(*pos_neg, s, data::label_map_preset(steps_.label_map)));
    bytes_ += static_cast<std::int64_t>(c.image.numel() * c.image.element_size() + c.label.numel());
    slot[i] = static_cast<std::int64_t>(cases_.size());
    cases_.push_back(std::move(c));
  }
  for (auto& m : members_) m = slot.at(m);
}

std::string DeviceCache::describe() const {
  return fmt::format("{}, {} on {} ({} images, packed labels)", plural(cases(), "case"), gigabytes(static_cast<double>(bytes_)), device_.str(), dtype_name_);
}

std::vector<std::int64_t> DeviceCache::order(std::int64_t epoch) const {
  const auto n = static_cast<std::int64_t>(members_.size());
  std::vector<std::int64_t> out = placement_ == CachePlacement::kShard ? distributed_order(n, o_.seed, epoch, o_.shuffle, 0, 1, false)
                                                                       : distributed_order(n, o_.seed, epoch, o_.shuffle, o_.rank, o_.world, o_.drop_last);
  for (auto& i : out) i = members_[static_cast<std::size_t>(i)];
  return out;
}

std::int64_t DeviceCache::batches_per_epoch() const {
  return (static_cast<std::int64_t>(order(0).size()) + o_.batch - 1) / o_.batch;
}

void DeviceCache::start_epoch(std::int64_t epoch, std::int64_t first_batch) {
  epoch_ = epoch;
  order_ = order(epoch);
  end_ = (static_cast<std::int64_t>(order_.size()) + o_.batch - 1) / o_.batch;
  next_ = std::min(first_batch, end_);
  wait_seconds_ = 0;
}

std::optional<Batch> DeviceCache::next() {
  if (next_ >= end_) return std::nullopt;
  const auto t0 = std::chrono::steady_clock::now();
  Batch b = build(epoch_, next_++);
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return b;
}

Batch DeviceCache::build(std::int64_t epoch, std::int64_t b) const {
  const std::vector<std::int64_t> ord = epoch == epoch_ && !order_.empty() ? order_ : order(epoch);
  const std::int64_t first = b * o_.batch;
  const std::int64_t last = std::min<std::int64_t>(first + o_.batch, static_cast<std::int64_t>(ord.size()));
  if (first >= last) throw Error(fmt::format("device cache: no batch {} in epoch {}", b, epoch));
  Batch batch;
  batch.index = b;
  // Each sample's draws, and its leading crops as views of the cached case.
  std::vector<std::vector<transforms::StepDraw>> draws;
  std::vector<torch::Tensor> images, labels;
  std::size_t k = 0;  // index into each draws vector of the first step not yet applied
  for (std::int64_t j = first; j < last; ++j) {
    const Case& c = cases_[static_cast<std::size_t>(ord[static_cast<std::size_t>(j)])];
    transforms::SampleRng rng(o_.seed, c.case_key, static_cast<std::uint64_t>(epoch));
    draws.push_back(transforms::draw_steps(steps_, first_step_, c.size, rng, 0, c.centres.get()));
    torch::Tensor image = c.image, label = c.label;
    for (k = 0; k < draws.back().size() && is_crop(steps_.steps[draws.back()[k].step]); ++k) {
      const auto& box = draws.back()[k].box;
      for (int a = 0; a < 3; ++a) {
        image = image.narrow(a + 1, box.start[a], box.size[a]);
        label = label.narrow(a, box.start[a], box.size[a]);
      }
    }
    if (!images.empty() && image.sizes() != images.front().sizes())
      throw Error(fmt::format("sample {} has shape {}, the batch's first has {}: crop roi larger than the volume?", c.key,
                              fmt::join(image.sizes(), "x"), fmt::join(images.front().sizes(), "x")));
    images.push_back(image);
    labels.push_back(label);
    batch.keys.push_back(c.key);
  }
  torch::Tensor x = torch::stack(images).to(torch::kFloat32), y = torch::stack(labels);
  const auto n = static_cast<std::size_t>(last - first);
  for (; k < draws.front().size(); ++k) {
    const transforms::Step& step = steps_.steps[draws.front()[k].step];
    std::vector<float> v(n);
    auto column = [&](auto f) {
      for (std::size_t i = 0; i < n; ++i) v[i] = f(draws[i][k]);
      return per_sample(v, 5, device_);
    };
    if (is_crop(step)) {  // a later crop: the same window size for all, per-sample starts
      std::vector<torch::Tensor> xs, ys;
      for (std::size_t i = 0; i < n; ++i) {
        torch::Tensor xi = x[static_cast<std::int64_t>(i)], yi = y[static_cast<std::int64_t>(i)];
        for (int a = 0; a < 3; ++a) {
          xi = xi.narrow(a + 1, draws[i][k].box.start[a], draws[i][k].box.size[a]);
          yi = yi.narrow(a, draws[i][k].box.start[a], draws[i][k].box.size[a]);
        }
        xs.push_back(xi);
        ys.push_back(yi);
      }
      x = torch::stack(xs);
      y = torch::stack(ys);
    } else if (auto* f = std::get_if<transforms::RandFlipStep>(&step)) {
      const torch::Tensor m = column([](const transforms::StepDraw& d) { return d.applied ? 1.0f : 0.0f; }).gt(0);
      std::vector<std::int64_t> image_dims, label_dims;  // one draw flips every listed axis
      for (int a = 0; a < 3; ++a)
        if (f->spatial_axis.axis[static_cast<std::size_t>(a)]) {
          image_dims.push_back(a + 2);
          label_dims.push_back(a + 1);
        }
      x = torch::where(m, x.flip(image_dims), x);
      y = torch::where(m.view({static_cast<std::int64_t>(n), 1, 1, 1}), y.flip(label_dims), y);
    } else if (auto* nz = std::get_if<transforms::NormalizeStep>(&step)) {
      x = normalize_batch(x, nz->nonzero, nz->channel_wise);
    } else if (std::holds_alternative<transforms::RandScaleStep>(step)) {
      x = x * column([](const transforms::StepDraw& d) { return d.applied ? static_cast<float>(1.0 + d.value) : 1.0f; });
    } else if (std::holds_alternative<transforms::RandShiftStep>(step)) {
      x = x + column([](const transforms::StepDraw& d) { return d.applied ? static_cast<float>(d.value) : 0.0f; });
    } else {
      throw Error(fmt::format("device cache: step {} cannot run on a batch", transforms::step_name(step)));
    }
  }
  // TC, WT, ET channels from the packed bits.
  const torch::Tensor bits = torch::tensor({1, 2, 4}, torch::kUInt8).view({1, 3, 1, 1, 1}).to(device_);
  batch.label = y.unsqueeze(1).bitwise_and(bits).ne(0).to(torch::kFloat32);
  batch.image = x.contiguous();
  return batch;
}

}  // namespace segscale::loader
