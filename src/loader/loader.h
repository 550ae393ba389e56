#pragma once
// Batches from a sample store: a pool of threads reads samples (one pread each), runs the random stage
// online for --cache stores, and assembles batch tensors ahead of the trainer in a bounded queue.
// The order of an epoch is a pure function of (seed, epoch), as PyTorch's DistributedSampler makes it, and
// so is every augmentation (keyed by seed, case and epoch): a run resumed at any batch sees the same data.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "model/torch_compat.h"
#include "data/catalog.h"
#include "store/store.h"
#include "transforms/pipeline.h"

namespace segscale::loader {

// PyTorch's DistributedSampler: randperm(n) from a generator seeded with seed + epoch (or 0..n-1 without
// shuffle), padded by repetition to a multiple of world (or cut with drop_last), then every world-th from rank.
std::vector<std::int64_t> distributed_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch, bool shuffle, int rank, int world,
                                            bool drop_last);

enum class SampleMode {
  kAsStored,      // --copies stores: samples are final
  kRandomStage,   // --cache stores: run the pipeline's random stage, keyed by (seed, case, epoch)
  kCenterCrop,    // validation on --cache stores: centre crop to roi, then normalise (the case study's val chain)
  kWhole,         // validation on --cache stores, sliding window: the whole volume, normalised
};

struct LoaderOptions {
  int batch = 2;
  int threads = 2;
  int prefetch = 4;  // batches ready ahead of the consumer
  std::uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = false;
  int rank = 0, world = 1;
  bool pin_memory = false;
  bool skip_bad = false;  // a corrupt sample is skipped with a warning instead of stopping
  SampleMode mode = SampleMode::kAsStored;
  transforms::Pipeline pipeline;  // the store's pipeline (kRandomStage runs its random steps)
  transforms::Shape3 roi{128, 128, 64};  // kCenterCrop
};

struct Batch {
  torch::Tensor image, label;  // [B, C, X, Y, Z] float32 and [B, 3, X, Y, Z] float32
  std::vector<std::string> keys;
  std::int64_t index = 0;  // batch number within the epoch
};

class Loader {
 public:
  // `subset`: indices into store.samples() this loader draws from (a split).
  Loader(std::shared_ptr<const store::StoreReader> store, std::vector<std::size_t> subset, LoaderOptions options);
  // From raw NIfTI cases (indices into catalog.training), the whole chain run per sample as the case study's
  // single-GPU script does: kRandomStage runs the crop-first single-copy path keyed by (seed, case, epoch);
  // kCenterCrop / kWhole run the deterministic stage first.
  Loader(std::shared_ptr<const data::Catalog> catalog, std::vector<std::size_t> subset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts epoch `epoch` at batch `first_batch` (to resume mid-epoch).
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0);
  // The next batch of the epoch, or nullopt at its end. Rethrows a worker's error (naming the sample).
  std::optional<Batch> next();
  std::int64_t batches_per_epoch() const;
  std::int64_t samples_per_epoch() const;
  double wait_seconds() const { return wait_seconds_; }  // time next() blocked since start_epoch

 private:
  void stop();
  void worker();
  Batch build(std::int64_t b);
  transforms::Sample load(std::size_t subset_pos);
  transforms::Pipeline validation_pipeline() const;

  std::shared_ptr<const store::StoreReader> store_;
  std::shared_ptr<const data::Catalog> catalog_;
  std::string key_of(std::size_t subset_pos) const;
  std::vector<std::size_t> subset_;
  LoaderOptions o_;
  std::vector<std::int64_t> order_;
  std::int64_t epoch_ = 0, next_to_build_ = 0, next_to_take_ = 0, end_ = 0;
  std::map<std::int64_t, std::pair<std::optional<Batch>, std::exception_ptr>> ready_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  double wait_seconds_ = 0;
};

}  // namespace segscale::loader
