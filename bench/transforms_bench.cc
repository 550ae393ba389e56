// Transform engine speed on one BraTS case (the real one in ../shared/data when present, else a synthetic
// 240x240x155 phantom), one thread: the deterministic stage per case (load + spacing + orientation) and the
// random stage per copy (crop, flip, normalise, scale, shift, label channels). Prints JSON lines too, so
// bench/transforms_vs_monai.py can put MONAI's time per pair beside them.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "data/synth.h"
#include "transforms/intensity.h"
#include "transforms/load.h"
#include "transforms/pipeline.h"
#include "util/memory.h"

using namespace segscale;
using namespace segscale::transforms;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

static double secs(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int main(int argc, char** argv) {
  tune_allocator_for_volumes();
  fs::path shared = argc > 1 ? fs::path(argv[1]) : fs::path(SEGSCALE_SHARED_DATA) / "brats2021-00006";
  int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  std::vector<fs::path> images;
  fs::path label;
  std::string preset = "brats21", what;
  fs::path tmp;
  if (fs::exists(shared / "BraTS2021_00006_seg.nii.gz")) {
    for (const char* m : {"flair", "t1", "t1ce", "t2"}) images.push_back(shared / fmt::format("BraTS2021_00006_{}.nii.gz", m));
    label = shared / "BraTS2021_00006_seg.nii.gz";
    what = "real case BraTS2021_00006 (4 x int16 240x240x155 .nii.gz, LPS)";
  } else {
    tmp = fs::temp_directory_path() / "segscale-bench-transforms";
    data::SynthOptions o;
    o.out = tmp;
    o.cases = 1;
    o.layout = "brats21";
    o.orientation = "LPS";
    o.quiet = true;
    data::synthesize_dataset(o);
    for (const char* m : {"flair", "t1", "t1ce", "t2"}) images.push_back(tmp / fmt::format("BraTS2021_00000/BraTS2021_00000_{}.nii.gz", m));
    label = tmp / "BraTS2021_00000/BraTS2021_00000_seg.nii.gz";
    what = "synthetic 240x240x155 LPS phantom (real case absent)";
  }
  Pipeline pipe = Pipeline::case_study();
  pipe.label_map = preset;
  const auto& map = data::label_map_preset(preset);

  double best_load = 1e9, best_cached = 1e9;
  Sample cached;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    Sample s;
    s.image = load_image(images);
    s.label = load_label(label, map);
    best_load = std::min(best_load, secs(t0));
    auto t1 = Clock::now();
    cached = run_cached_stage(pipe, std::move(s), 1);
    best_cached = std::min(best_cached, secs(t1));
  }
  const int copies = 20;
  auto t2 = Clock::now();
  for (int c = 0; c < copies; ++c) {
    SampleRng rng(0, "bench", static_cast<std::uint64_t>(c));
    Sample s = run_random_stage(pipe, cached, rng);
    Volume lab = label_channels(*s.label, map);
  }
  const double per_copy = secs(t2) / copies;
  // On-the-fly single copy (the case study's training-from-NIfTI mode): load, then crop-first resampling.
  double best_single = 1e9;
  for (int r = 0; r < reps; ++r) {
    Sample s;
    auto t0 = Clock::now();
    s.image = load_image(images);
    s.label = load_label(label, map);
    SampleRng rng(0, "bench", static_cast<std::uint64_t>(r));
    Sample out = run_single_copy(pipe, s, rng, 1);
    best_single = std::min(best_single, secs(t0));
  }
  const double det = best_load + best_cached;
  fmt::print("transforms, one thread, {}\n", what);
  fmt::print("  load (decode 5 files, channel-first)  {:7.1f} ms\n", best_load * 1e3);
  fmt::print("  spacing + orientation                 {:7.1f} ms\n", best_cached * 1e3);
  fmt::print("  deterministic stage per case          {:7.1f} ms  (best of {})\n", det * 1e3, reps);
  fmt::print("  random stage per copy                 {:7.1f} ms  (mean of {}, incl. label channels)\n", per_copy * 1e3, copies);
  fmt::print("  one pair from NIfTI, crop-first path  {:7.1f} ms  (load + resample only the crop; best of {})\n", best_single * 1e3, reps);
  fmt::print("{{\"bench\": \"transforms\", \"deterministic_s\": {:.5f}, \"load_s\": {:.5f}, \"spacing_orientation_s\": {:.5f}, "
             "\"random_per_copy_s\": {:.5f}, \"single_pair_s\": {:.5f}}}\n",
             det, best_load, best_cached, per_copy, best_single);
  if (!tmp.empty()) fs::remove_all(tmp);
  return 0;
}
