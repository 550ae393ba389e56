#pragma once
// Batches from a sample store into plain host buffers, libtorch-free: a pool of threads reads samples (one
// pread each into a reused buffer), runs the random stage online for --cache stores straight from the stored
// bytes into the batch (transforms/window_stage.h), and hands float32 images and uint8 labels to the consumer
// through a bounded queue; dropped batches return their buffers to a pool (buffer_pool.h). The torch Loader (loader.h) and the Python package wrap it.
// The order of an epoch is a pure function of (seed, epoch), as PyTorch's DistributedSampler makes it, and
// so is every augmentation (keyed by seed, case and epoch): a run resumed at any batch sees the same data.
#include <array>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/catalog.h"
#include "loader/batch_prefetch.h"
#include "loader/buffer_pool.h"
#include "loader/order.h"
#include "store/store.h"
#include "transforms/pipeline.h"
#include "util/default_init.h"

namespace segscale::loader {

enum class SampleMode {
  kAsStored,      // --copies stores: samples are final
  kRandomStage,   // --cache stores: run the pipeline's random stage, keyed by (seed, case, epoch)
  kCenterCrop,    // validation on --cache stores: centre crop to roi, then normalise (the case study's val chain)
  kWhole,         // validation on --cache stores, sliding window: the whole volume, normalised
};

struct HostLoaderOptions {
  int batch = 2;
  int threads = 2;
  int prefetch = 4;  // batches ready ahead of the consumer
  std::uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = false;
  int rank = 0, world = 1;
  bool skip_bad = false;  // a corrupt sample is skipped with a warning instead of stopping
  SampleMode mode = SampleMode::kAsStored;
  transforms::Pipeline pipeline;  // the store's pipeline (kRandomStage runs its random steps)
  transforms::Shape3 roi{128, 128, 64};  // kCenterCrop
  // Stores: the chain runs fused from the stored bytes into the batch (transforms/window_stage.h). false runs
  // the generic transforms on the decoded sample instead: the same voxels, slower; the reference for tests
  // and benchmarks.
  bool fused = true;
};

// The mode a training loader uses for a store: kRandomStage for --cache stores, kAsStored for --copies.
SampleMode training_mode(const store::StoreReader& store);

struct HostBatch {
  std::array<std::int64_t, 5> image_shape{}, label_shape{};  // [n, C, X, Y, Z], [n, 3, X, Y, Z]; zeros when empty
  UninitVector<float> image;                                   // C order
  UninitVector<std::uint8_t> label;                            // 0/1, C order
  std::vector<std::string> keys;                               // n keys (empty: every sample skipped as bad)
  std::int64_t index = 0;                                      // batch number within the epoch
  std::shared_ptr<BufferPool> pool;  // where image and label go when the batch is dropped (the loader's; may be null)

  HostBatch() = default;
  HostBatch(HostBatch&&) = default;
  HostBatch& operator=(HostBatch&&) = default;
  ~HostBatch() {
    if (!pool) return;
    pool->give_back(std::move(image));
    pool->give_back(std::move(label));
  }
};

class HostLoader {
 public:
  // `subset`: indices into store.samples() this loader draws from (a split). Throws UsageError for batch < 1,
  // Error for an empty subset.
  HostLoader(std::shared_ptr<const store::StoreReader> store, std::vector<std::size_t> subset, HostLoaderOptions options);
  // From raw NIfTI cases (indices into catalog.training), the whole chain run per sample as the case study's
  // single-GPU script does: kRandomStage runs the crop-first single-copy path keyed by (seed, case, epoch);
  // kCenterCrop / kWhole run the deterministic stage first.
  HostLoader(std::shared_ptr<const data::Catalog> catalog, std::vector<std::size_t> subset, HostLoaderOptions options);
  ~HostLoader();
  HostLoader(const HostLoader&) = delete;
  HostLoader& operator=(const HostLoader&) = delete;

  // Starts epoch `epoch` at batch `first_batch` (to resume mid-epoch); stops a running epoch first.
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0);
  // The next batch of the epoch, or nullopt at its end (or before any start_epoch). Rethrows a worker's
  // error (naming the shard and sample). Call from one thread at a time.
  std::optional<HostBatch> next();
  std::int64_t batches_per_epoch() const;
  std::int64_t samples_per_epoch() const;
  double wait_seconds() const { return prefetch_.wait_seconds(); }  // time next() blocked since start_epoch
  const HostLoaderOptions& options() const { return o_; }

 private:
  // A worker thread's reusable read buffer.
  struct Scratch {
    store::StoreReader::Raw raw;
  };
  // A batch being filled: its buffers are sized for `capacity` samples of the first sample's shape.
  struct Filling {
    HostBatch batch;
    std::int64_t count = 0, capacity = 0;
    std::pair<float*, std::uint8_t*> slot(std::int64_t channels, const transforms::Shape3& size, const std::string& key);
    void add(const transforms::Sample& s, const std::string& key);  // a finished sample copied into the next slot
  };

  HostBatch build(std::int64_t b, Scratch& scratch);
  void add_stored(std::size_t subset_pos, Filling& f, Scratch& scratch);
  transforms::Sample load(std::size_t subset_pos);  // a raw NIfTI case through the whole chain
  transforms::Pipeline validation_pipeline() const;
  std::string key_of(std::size_t subset_pos) const;

  std::shared_ptr<const store::StoreReader> store_;
  std::shared_ptr<const data::Catalog> catalog_;
  std::vector<std::size_t> subset_;
  HostLoaderOptions o_;
  std::vector<std::int64_t> order_;
  std::int64_t epoch_ = 0;
  std::shared_ptr<BufferPool> pool_;
  std::vector<Scratch> scratch_;  // one per worker thread
  BatchPrefetch<HostBatch> prefetch_;  // last: its threads stop before the members they use go
};

}  // namespace segscale::loader
