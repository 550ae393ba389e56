#pragma once
// What the trainer asks for batches: the host loader (loader.h: threads, a bounded queue) or the device cache
// (device_cache.h: every case resident on the training device). For the same options both give the same
// batches of an epoch, in the same order.
#include <cstdint>
#include <memory>
#include <optional>

#include "loader/loader.h"

namespace segscale::loader {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Starts epoch `epoch` at batch `first_batch` (to resume mid-epoch).
  virtual void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0) = 0;
  // The next batch of the epoch, or nullopt at its end.
  virtual std::optional<Batch> next() = 0;
  virtual std::int64_t batches_per_epoch() const = 0;
  // Seconds next() spent producing or waiting for batches since start_epoch.
  virtual double wait_seconds() const = 0;
};

// The host loader as a BatchSource.
class HostSource final : public BatchSource {
 public:
  explicit HostSource(std::unique_ptr<Loader> loader) : loader_(std::move(loader)) {}
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0) override { loader_->start_epoch(epoch, first_batch); }
  std::optional<Batch> next() override { return loader_->next(); }
  std::int64_t batches_per_epoch() const override { return loader_->batches_per_epoch(); }
  double wait_seconds() const override { return loader_->wait_seconds(); }

 private:
  std::unique_ptr<Loader> loader_;
};

}  // namespace segscale::loader
