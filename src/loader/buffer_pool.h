#pragma once
// Batch buffers handed back when the consumer drops a batch and handed out again for a later one. A batch of
// crops is tens of MB; allocated afresh, every batch pays its page faults and the kernel's zeroing (glibc maps
// blocks that large anew on each allocation, and a Python process keeps that default). Thread-safe; keeps at
// most `keep` buffers of each kind, the rest are freed. libtorch-free.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "util/default_init.h"

namespace segscale::loader {

class BufferPool {
 public:
  explicit BufferPool(std::size_t keep) : keep_(keep) {}
  // A buffer of n values (contents unspecified): a kept one whose capacity suffices, else a new one.
  UninitVector<float> floats(std::size_t n) { return take(floats_, n); }
  UninitVector<std::uint8_t> bytes(std::size_t n) { return take(bytes_, n); }
  void give_back(UninitVector<float>&& v) { put(floats_, std::move(v)); }
  void give_back(UninitVector<std::uint8_t>&& v) { put(bytes_, std::move(v)); }
  std::size_t kept() const {
    std::lock_guard<std::mutex> lock(mu_);
    return floats_.size() + bytes_.size();
  }

 private:
  template <typename V>
  V take(std::vector<V>& kept, std::size_t n) {
    V v;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (std::size_t i = 0; i < kept.size(); ++i)
        if (kept[i].capacity() >= n) {
          v = std::move(kept[i]);
          kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
    }
    v.resize(n);
    return v;
  }
  template <typename V>
  void put(std::vector<V>& kept, V&& v) {
    if (v.capacity() == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (kept.size() < keep_) kept.push_back(std::move(v));
  }  // a buffer not kept stays with the caller, who frees it outside the lock

  mutable std::mutex mu_;
  std::size_t keep_;
  std::vector<UninitVector<float>> floats_;
  std::vector<UninitVector<std::uint8_t>> bytes_;
};

}  // namespace segscale::loader
