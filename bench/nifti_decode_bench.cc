// Decode speed of a BraTS-size 4-D .nii.gz (240x240x155x4 float32, phantom content): segscale's reader
// (libdeflate, whole buffer) against zlib's streaming inflate, measured in the same run.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "data/synth.h"
#include "io/file.h"
#include "io/gzip.h"
#include "io/nifti_image.h"

using namespace segscale;
namespace fs = std::filesystem;

template <typename Fn>
double best_of(int reps, Fn&& fn) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

int main(int argc, char** argv) {
  int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  fs::path dir = fs::temp_directory_path() / "segscale-bench-decode";
  fs::create_directories(dir);
  fs::path file = dir / "case.nii.gz";
  auto p = data::make_phantom({240, 240, 155}, 0, 0, data::SynthLayout::kMsd);
  auto h = io::make_nifti_header({240, 240, 155, 4}, io::DType::kFloat32, Affine::identity());
  io::write_nifti(file, h, {reinterpret_cast<const std::uint8_t*>(p.image.data()), p.image.size() * 4}, 6);
  auto gz = io::read_file(file);
  const double raw_mb = static_cast<double>(h.data_bytes() + 352) / 1e6;

  double t_zlib = best_of(reps, [&] { auto v = io::gunzip_zlib(gz, "bench"); });
  double t_deflate = best_of(reps, [&] { auto v = io::gunzip_exact(gz, h.data_bytes() + 352, "bench"); });
  double t_read = best_of(reps, [&] { auto img = io::read_nifti(file); });
  double t_float = best_of(reps, [&] { auto v = io::to_float32(io::read_nifti(file)); });

  fmt::print("nifti decode: 240x240x155x4 float32, {:.1f} MB raw, {:.1f} MB gzip (level 6), best of {}\n", raw_mb,
             static_cast<double>(gz.size()) / 1e6, reps);
  fmt::print("  zlib inflate (baseline)        {:7.1f} ms  {:7.1f} MB/s  1.00x\n", t_zlib * 1e3, raw_mb / t_zlib);
  fmt::print("  libdeflate inflate             {:7.1f} ms  {:7.1f} MB/s  {:.2f}x\n", t_deflate * 1e3, raw_mb / t_deflate, t_zlib / t_deflate);
  fmt::print("  read_nifti (file + inflate)    {:7.1f} ms  {:7.1f} MB/s  {:.2f}x\n", t_read * 1e3, raw_mb / t_read, t_zlib / t_read);
  fmt::print("  read_nifti + to_float32        {:7.1f} ms  {:7.1f} MB/s  {:.2f}x\n", t_float * 1e3, raw_mb / t_float, t_zlib / t_float);
  fs::remove_all(dir);
  return 0;
}
