#pragma once
// nnU-Net's training and validation batches from a store made by `segscale prep --plans` (store/nnunet_sample.h):
// epochs of a fixed number of batches (nnU-Net: 250 training, 50 validation iterations); per batch nnU-Net's
// sampler (loader/nnunet_sampler.h: cases with replacement, the last third of the slots forced onto foreground,
// its boxes and padding) and, for training, nnU-Net's whole augmentation chain per slot
// (transforms/nnunet_chain.h); validation batches get what nnU-Net's validation transforms do (-1 removed,
// regions), at the plan's patch. Targets are 0/1 region channels in the order of `regions`.
//
// Draws are keyed, not streamed: batch b of epoch e on rank r draws its cases and boxes from numpy's generator
// seeded with a hash of (seed, stream, e, b, r), and slot j its augmentation from numpy's and torch's generators
// seeded with hashes of the same plus j. A batch is therefore the same whichever thread builds it and whenever,
// and a run resumed at any batch sees what an uninterrupted one would. (nnU-Net itself streams one generator per
// worker process, so its batches depend on the worker count; the distributions are the same, which the oracle
// tests check draw for draw on the replayed streams.) Threads build batches ahead (loader/batch_prefetch.h).
// libtorch-free.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "loader/batch_prefetch.h"
#include "loader/host_loader.h"
#include "loader/nnunet_sampler.h"
#include "store/store.h"

namespace segscale::loader {

struct NnunetLoaderOptions {
  int batch = 2;
  int threads = 2;
  int prefetch = 2;
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;  // 0 training, 1 validation: their draws never coincide
  int rank = 0;
  std::int64_t batches_per_epoch = 250;
  bool augment = true;       // false: validation batches (no augmentation, the plan's patch)
  Int3 patch{};              // the plan's patch
  double oversample_foreground_percent = 0.33;
  std::vector<std::vector<int>> regions;  // label values per target channel, in output order
  std::vector<bool> use_mask_for_norm;    // per channel (the plan's)
};

class NnunetLoader {
 public:
  // `subset`: indices into store.samples(). Reads every subset sample's JSON member once (shapes and foreground
  // voxels). Throws UsageError for batch < 1 or no regions, Error naming the sample for a malformed one.
  NnunetLoader(std::shared_ptr<const store::StoreReader> store, std::vector<std::size_t> subset, NnunetLoaderOptions options);
  ~NnunetLoader();
  NnunetLoader(const NnunetLoader&) = delete;
  NnunetLoader& operator=(const NnunetLoader&) = delete;

  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0);
  std::optional<HostBatch> next();
  std::int64_t batches_per_epoch() const { return o_.batches_per_epoch; }
  double wait_seconds() const { return prefetch_.wait_seconds(); }

  // Batch b of epoch e, built on the calling thread (what the workers run; tests call it directly).
  HostBatch build(std::int64_t epoch, std::int64_t b) const;

 private:
  std::shared_ptr<const store::StoreReader> store_;
  std::vector<std::size_t> subset_;
  NnunetLoaderOptions o_;
  NnunetSamplerConfig sampler_;
  std::vector<SamplerCase> cases_;
  BatchPrefetch<HostBatch> prefetch_;  // last: its threads stop before the members they use go
};

// The seed of one keyed draw stream: splitmix64 over (seed, stream, epoch, batch, rank, slot, which), 32 bits as
// numpy's and torch's seeding take them.
std::uint32_t nnunet_draw_seed(std::uint64_t seed, std::uint64_t stream, std::int64_t epoch, std::int64_t batch, int rank, int slot, int which);

}  // namespace segscale::loader
