// The loader alone: samples/s delivered to a consumer that does nothing, from a store, with N loader threads,
// three ways in one run (machines here are noisy, so the baseline is measured beside the others):
//   generic: HostLoader running the generic transforms on each decoded sample (fused = false), the baseline
//   fused:   HostLoader running the chain fused from the stored bytes into the batch (the default)
//   torch:   the torch Loader over the fused HostLoader (adds the tensors and the float32 label)
// Usage: bench_loader STORE [THREADS] [BATCH] [EPOCHS] [ROUNDS] [PATHS]   (rounds alternate the paths, best kept;
//        PATHS: a comma list, default generic,fused,torch, e.g. fused alone under a profiler)
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "loader/loader.h"
#include "util/memory.h"

using namespace segscale;

namespace {

// Whole epochs of a HostLoader or a torch Loader (both start_epoch / next, batches with keys).
template <typename L>
double samples_per_s(L& l, int epochs) {
  std::int64_t n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int e = 0; e < epochs; ++e) {
    l.start_epoch(e);
    while (auto b = l.next()) n += static_cast<std::int64_t>(b->keys.size());
  }
  return static_cast<double>(n) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_loader STORE [THREADS] [BATCH] [EPOCHS] [ROUNDS] [PATHS]\n");
    return 2;
  }
  tune_allocator_for_volumes();
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2, batch = argc > 3 ? std::atoi(argv[3]) : 2, epochs = argc > 4 ? std::atoi(argv[4]) : 2,
            rounds = argc > 5 ? std::atoi(argv[5]) : 2;
  const std::string paths = argc > 6 ? argv[6] : "generic,fused,torch";
  auto wanted = [&](const std::string& p) { return ("," + paths + ",").find("," + p + ",") != std::string::npos; };
  at::set_num_threads(1);
  auto store = std::make_shared<store::StoreReader>(argv[1]);
  const auto& settings = store->manifest()["settings"];
  loader::LoaderOptions o;
  o.batch = batch;
  o.threads = threads;
  o.pipeline = transforms::Pipeline::from_json(settings["pipeline"], "manifest");
  o.mode = loader::training_mode(*store);
  std::vector<std::size_t> all(store->samples().size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;

  std::map<std::string, double> best;
  for (int r = 0; r < rounds; ++r) {
    for (bool fused : {false, true}) {
      if (!wanted(fused ? "fused" : "generic")) continue;
      loader::HostLoaderOptions h = o;
      h.fused = fused;
      loader::HostLoader l(store, all, h);
      const double v = samples_per_s(l, epochs);
      best[fused ? "fused" : "generic"] = std::max(best[fused ? "fused" : "generic"], v);
    }
    if (!wanted("torch")) continue;
    loader::Loader l(store, all, o);
    const double v = samples_per_s(l, epochs);
    best["torch"] = std::max(best["torch"], v);
  }
  for (const char* name : {"generic", "fused", "torch"})
    if (wanted(name))
      fmt::print("{{\"bench\": \"loader\", \"path\": \"{}\", \"mode\": \"{}\", \"threads\": {}, \"batch\": {}, \"samples_per_s\": {:.2f}, "
               "\"vs_generic\": {}}}\n",
               name, settings["mode"].get<std::string>(), threads, batch, best[name], wanted("generic") ? fmt::format("{:.2f}", best[name] / best["generic"]) : std::string("null"));
  return 0;
}
