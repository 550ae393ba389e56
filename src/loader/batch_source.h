#pragma once
// What the trainer asks for batches: the host loader (loader.h: threads, a bounded queue) or the device cache
// (device_cache.h: every case resident on the training device). For the same options both give the same
// batches of an epoch, in the same order.
#include <cstdint>
#include <memory>
#include <optional>

#include "loader/loader.h"
#include "loader/nnunet_loader.h"

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

// nnU-Net's batches (nnunet_loader.h) as a BatchSource.
class NnunetSource final : public BatchSource {
 public:
  NnunetSource(std::unique_ptr<NnunetLoader> loader, bool pin_memory) : loader_(std::move(loader)), pin_memory_(pin_memory) {}
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0) override { loader_->start_epoch(epoch, first_batch); }
  std::optional<Batch> next() override {
    auto host = loader_->next();
    if (!host) return std::nullopt;
    return to_tensors(std::move(*host), pin_memory_);
  }
  std::int64_t batches_per_epoch() const override { return loader_->batches_per_epoch(); }
  double wait_seconds() const override { return loader_->wait_seconds(); }

 private:
  std::unique_ptr<NnunetLoader> loader_;
  bool pin_memory_;
};

}  // namespace segscale::loader
