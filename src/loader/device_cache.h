#pragma once
// --device-cache: the cases of a --cache store held in the training device's memory (CUDA or CPU), and every
// batch built there with batched libtorch ops: the random stage's crop at the drawn start, flip, MONAI's
// NormalizeIntensity (nonzero, channel-wise), scale, shift, and the TC/WT/ET label channels. No per-sample host
// work after loading. The draws come from transforms::draw_random_stage with SampleRng(seed, case, epoch), as
// the host loader's, and the epoch order from distributed_order, so a batch equals the host loader's (to float
// rounding of the normalisation's sums: 1e-5 per voxel).
//
// Held per case: the image in the store's dtype (float16 or float32) and the label as one uint8 per voxel
// (bits 0, 1, 2 = TC, WT, ET).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loader/batch_source.h"
#include "loader/loader.h"
#include "model/torch_compat.h"
#include "store/store.h"

namespace segscale::loader {

enum class CachePlacement {
  kFull,   // every rank holds every case; each epoch's order is DistributedSampler's (as the host loader's)
  kShard,  // each rank holds only its partition (MONAI's partition_dataset(shuffle=False, even_divisible=True):
           // cases rank, rank + world, ..., padded by repetition) and shuffles within it every epoch
           // (randperm with seed + epoch): a rank never sees the other ranks' cases
};

// Throws Error when a cache of `need` bytes does not fit in `free` bytes on `device` (e.g. "cuda:0"), naming both
// and the alternatives; nothing when `free` is unknown.
void check_cache_fits(std::uint64_t need, std::optional<std::uint64_t> free, const std::string& device);

class DeviceCache final : public BatchSource {
 public:
  // Reads the samples `subset` (indices into store->samples(), cases of a --cache store) once onto `device`.
  // options.mode: kRandomStage (training), kCenterCrop or kWhole (validation); options.threads, prefetch,
  // pin_memory and skip_bad do not apply. Before reading anything, throws Error when the cache would not fit
  // (bytes needed and free on the device, and the alternatives); throws Error naming the sample for a corrupt or
  // non-finite one, and UsageError for a store that is not a --cache store or a pipeline it cannot batch.
  DeviceCache(std::shared_ptr<const store::StoreReader> store, std::vector<std::size_t> subset, LoaderOptions options,
              torch::Device device, CachePlacement placement = CachePlacement::kFull);

  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0) override;
  std::optional<Batch> next() override;
  std::int64_t batches_per_epoch() const override;
  double wait_seconds() const override { return wait_seconds_; }

  std::int64_t bytes() const { return bytes_; }  // device memory the cached cases hold
  std::int64_t cases() const { return static_cast<std::int64_t>(cases_.size()); }
  std::string describe() const;                  // e.g. "4 cases, 12.3 MB on cpu (float16 images, packed labels)"

  // Batch `b` of epoch `epoch` (for tests and benches; next() returns the same).
  Batch build(std::int64_t epoch, std::int64_t b) const;

 private:
  struct Case {
    torch::Tensor image;  // [C, X, Y, Z] store dtype
    torch::Tensor label;  // [X, Y, Z] uint8, bits TC, WT, ET
    std::string key, case_key;
    transforms::Shape3 size{};
    std::shared_ptr<const transforms::CropCentres> centres;  // with a leading rand_crop_by_pos_neg_label
  };
  std::vector<std::int64_t> order(std::int64_t epoch) const;

  LoaderOptions o_;
  torch::Device device_;
  CachePlacement placement_;
  transforms::Pipeline steps_;  // what each batch runs: the random stage, or the validation chain
  std::size_t first_step_ = 0;  // of steps_
  std::vector<Case> cases_;
  std::vector<std::int64_t> members_;  // this rank's entries (indices into cases_; kShard pads by repetition)
  std::int64_t bytes_ = 0;
  std::string dtype_name_;
  std::vector<std::int64_t> order_;
  std::int64_t epoch_ = 0, next_ = 0, end_ = 0;
  double wait_seconds_ = 0;
};

}  // namespace segscale::loader
