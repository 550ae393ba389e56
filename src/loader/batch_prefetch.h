#pragma once
// The batches of an epoch built ahead by worker threads and handed out in order (HostLoader, NnunetLoader): workers
// take the next batch number while it is at most `prefetch` ahead of the one being taken, build it, and park it
// (or the error it threw) until next() takes it; next() rethrows a worker's error. A batch's content must depend
// on its number alone, so the thread that builds it does not matter. libtorch-free.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace segscale::loader {

template <typename Batch>
class BatchPrefetch {
 public:
  // build(b, worker): batch b, on worker thread `worker` (0 .. threads-1, for per-thread scratch).
  using Build = std::function<Batch(std::int64_t b, int worker)>;

  BatchPrefetch() = default;
  BatchPrefetch(const BatchPrefetch&) = delete;
  BatchPrefetch& operator=(const BatchPrefetch&) = delete;
  ~BatchPrefetch() { stop(); }

  // Stops a running epoch, then builds batches [first, end) on `threads` threads.
  void start(std::int64_t first, std::int64_t end, int threads, int prefetch, Build build) {
    stop();
    end_ = end;
    next_to_build_ = next_to_take_ = std::min(first, end);
    prefetch_ = std::max(1, prefetch);
    build_ = std::move(build);
    wait_seconds_ = 0;
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this, i] { work(i); });
  }

  // Joins the workers (each finishes the batch it is building) and drops what was not taken.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    stopping_ = false;
    ready_.clear();
  }

  // The next batch in order, or nullopt past the end (or before any start). Call from one thread at a time.
  std::optional<Batch> next() {
    std::unique_lock<std::mutex> lock(mu_);
    if (next_to_take_ >= end_) return std::nullopt;
    const auto t0 = std::chrono::steady_clock::now();
    cv_.wait(lock, [&] { return ready_.count(next_to_take_) > 0; });
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto node = ready_.extract(next_to_take_);
    ++next_to_take_;
    lock.unlock();
    cv_.notify_all();
    if (node.mapped().second) std::rethrow_exception(node.mapped().second);
    return std::move(node.mapped().first);
  }

  double wait_seconds() const { return wait_seconds_; }  // time next() blocked since start

 private:
  void work(int worker) {
    for (;;) {
      std::int64_t b;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || next_to_build_ >= end_ || next_to_build_ < next_to_take_ + prefetch_; });
        if (stopping_ || next_to_build_ >= end_) return;
        b = next_to_build_++;
      }
      std::optional<Batch> batch;
      std::exception_ptr err;
      try {
        batch = build_(b, worker);
      } catch (...) {
        err = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_[b] = {std::move(batch), err};
      }
      cv_.notify_all();
    }
  }

  Build build_;
  std::int64_t next_to_build_ = 0, next_to_take_ = 0, end_ = 0;
  int prefetch_ = 1;
  std::map<std::int64_t, std::pair<std::optional<Batch>, std::exception_ptr>> ready_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  double wait_seconds_ = 0;
};

}  // namespace segscale::loader
