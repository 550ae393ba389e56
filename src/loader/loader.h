#pragma once
// Batches as torch tensors for the trainer: a thin wrapper over HostLoader (host_loader.h), which reads,
// augments and assembles them in its threads. The image buffer becomes the tensor without a copy (unless
// pinned memory is asked for); labels are widened to float32.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loader/host_loader.h"
#include "model/torch_compat.h"

namespace segscale::loader {

struct LoaderOptions : HostLoaderOptions {
  bool pin_memory = false;
};

struct Batch {
  torch::Tensor image, label;  // [B, C, X, Y, Z] float32 and [B, 3, X, Y, Z] float32 (undefined when keys is empty)
  std::vector<std::string> keys;
  std::int64_t index = 0;  // batch number within the epoch
};

// The tensors of a host batch: the image adopts the buffer (or is copied into pinned memory), the label is
// widened to float32.
Batch to_tensors(HostBatch host, bool pin_memory);

class Loader {
 public:
  Loader(std::shared_ptr<const store::StoreReader> store, std::vector<std::size_t> subset, LoaderOptions options)
      : host_(std::move(store), std::move(subset), options), pin_memory_(options.pin_memory) {}
  Loader(std::shared_ptr<const data::Catalog> catalog, std::vector<std::size_t> subset, LoaderOptions options)
      : host_(std::move(catalog), std::move(subset), options), pin_memory_(options.pin_memory) {}

  // As HostLoader's.
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0) { host_.start_epoch(epoch, first_batch); }
  std::optional<Batch> next();
  std::int64_t batches_per_epoch() const { return host_.batches_per_epoch(); }
  std::int64_t samples_per_epoch() const { return host_.samples_per_epoch(); }
  double wait_seconds() const { return host_.wait_seconds(); }

 private:
  HostLoader host_;
  bool pin_memory_;
};

}  // namespace segscale::loader
