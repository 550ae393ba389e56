// The loader alone: samples/s delivered to a consumer that does nothing, from a store, with N loader threads.
// Usage: bench_loader STORE [THREADS] [BATCH] [EPOCHS]
#include <fmt/format.h>

#include <chrono>

#include "loader/loader.h"
#include "util/memory.h"

using namespace segscale;

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_loader STORE [THREADS] [BATCH] [EPOCHS]\n");
    return 2;
  }
  tune_allocator_for_volumes();
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2, batch = argc > 3 ? std::atoi(argv[3]) : 2, epochs = argc > 4 ? std::atoi(argv[4]) : 2;
  at::set_num_threads(1);
  auto store = std::make_shared<store::StoreReader>(argv[1]);
  const auto& settings = store->manifest()["settings"];
  loader::LoaderOptions o;
  o.batch = batch;
  o.threads = threads;
  o.pipeline = transforms::Pipeline::from_json(settings["pipeline"], "manifest");
  o.mode = settings["mode"] == "cache" ? loader::SampleMode::kRandomStage : loader::SampleMode::kAsStored;
  std::vector<std::size_t> all(store->samples().size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  loader::Loader l(store, all, o);
  std::int64_t n = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int e = 0; e < epochs; ++e) {
    l.start_epoch(e);
    while (auto b = l.next()) n += static_cast<std::int64_t>(b->keys.size());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{{\"bench\": \"loader\", \"mode\": \"{}\", \"threads\": {}, \"samples\": {}, \"seconds\": {:.3f}, \"samples_per_s\": {:.2f}}}\n",
             settings["mode"].get<std::string>(), threads, n, s, static_cast<double>(n) / s);
  return 0;
}
