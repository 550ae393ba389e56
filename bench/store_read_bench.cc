// The loader's I/O alone, without libtorch: every sample of a store read once per epoch through StoreReader
// (one ranged read each: a pread on disk, a ranged GET on S3) by T threads, with CRC-32C checks. Prints
// samples/s and MB/s as JSON. Compare the same store on disk and in S3 in one run (bench/s3_bench.py).
// Usage: bench_store_read STORE [THREADS] [EPOCHS]
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "store/store.h"
#include "util/error.h"

using namespace segscale;

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_store_read STORE [THREADS] [EPOCHS]\n");
    return 2;
  }
  try {
    const int threads = argc > 2 ? std::atoi(argv[2]) : 2, epochs = argc > 3 ? std::atoi(argv[3]) : 2;
    store::StoreReader reader(argv[1]);
    const std::size_t n = reader.samples().size();
    std::atomic<std::size_t> next{0};
    std::atomic<std::uint64_t> bytes{0};
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&] {
        for (std::size_t i; (i = next++) < n * static_cast<std::size_t>(epochs);) bytes += reader.read(i % n).buffer.size();
      });
    for (auto& t : pool) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("{{\"bench\": \"store_read\", \"threads\": {}, \"samples\": {}, \"seconds\": {:.3f}, \"samples_per_s\": {:.1f}, \"mb_per_s\": {:.1f}}}\n",
               threads, n * epochs, s, static_cast<double>(n * epochs) / s, static_cast<double>(bytes) / 1e6 / s);
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "bench_store_read: {}\n", e.what());
    return 1;
  }
}
