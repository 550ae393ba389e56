// segscale's nnU-Net data path on the host, one thread: nnU-Net's sampler (case, forced foreground, box, crop and
// pad) and its whole training augmentation chain per sample, on a case nnU-Net's preprocessing wrote
// (`segscale apply --plans P --out DIR`). The peer row is bench/nnunet_data_path.py's nnU-Net run.
//   bench_nnunet_augment DIR S0,S1,S2 BATCHES BATCH_SIZE [regions|labels]
// Prints one JSON line: ms per sample, samples/s, peak RSS.
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/file.h"
#include "io/json_file.h"
#include "io/npy.h"
#include "loader/nnunet_sampler.h"
#include "transforms/nnunet_chain.h"

using namespace segscale;
namespace fs = std::filesystem;


int main(int argc, char** argv) {
  if (argc < 5) {
    fmt::print(stderr, "usage: bench_nnunet_augment DIR S0,S1,S2 BATCHES BATCH_SIZE [regions|labels]\n");
    return 2;
  }
  const fs::path dir(argv[1]);
  loader::Int3 patch{};
  {
    std::stringstream ss(argv[2]);
    std::string t;
    for (int d = 0; d < 3 && std::getline(ss, t, ','); ++d) patch[d] = std::stoll(t);
  }
  const int batches = std::stoi(argv[3]), batch_size = std::stoi(argv[4]);
  const bool regions = argc < 6 || std::string(argv[5]) == "regions";
  std::vector<std::int64_t> ishape, sshape;
  const auto image = io::read_npy<float>(dir / "image_0000.npy", "<f4", ishape);
  const auto seg = io::read_npy<std::int16_t>(dir / "label_0000.npy", "<i2", sshape);
  const nlohmann::json meta = io::read_json_file(dir / "meta.json");
  loader::SamplerCase c;
  c.shape = {ishape[1], ishape[2], ishape[3]};
  for (const auto& cl : meta.at("class_locations")) {
    std::vector<std::int64_t> s;
    const auto flat = io::read_npy<std::int64_t>(dir / cl.at("file").get<std::string>(), "<i8", s);
    auto& rows = c.class_locations.emplace_back();
    for (std::size_t i = 0; i + 3 < flat.size(); i += 4) rows.push_back({flat[i], flat[i + 1], flat[i + 2], flat[i + 3]});
  }
  const int channels = static_cast<int>(ishape[0]);
  loader::NnunetSamplerConfig cfg;
  cfg.batch_size = batch_size;
  cfg.final_patch_size = patch;
  cfg.patch_size = loader::nnunet_initial_patch_size(patch);
  transforms::NnunetAugmentSettings s;
  s.patch = patch;
  s.use_mask_for_norm.assign(static_cast<std::size_t>(channels), true);
  if (regions) s.regions = {{1, 2, 3}, {2, 3}, {3}};
  s.ds_scales = {{1, 1, 1}, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}, {0.125, 0.125, 0.125}, {0.0625, 0.0625, 0.125}};
  // One numpy stream for the sampler and the chain, as nnU-Net's (np.random.seed(1), torch.manual_seed(2) there
  // too): both sides then draw the same cases, boxes and augmentations.
  transforms::NnunetReplayDraws draws(1, 2);
  struct SharedNumpy final : loader::Draws {
    transforms::NnunetReplayDraws& d;
    explicit SharedNumpy(transforms::NnunetReplayDraws& x) : d(x) {}
    std::int64_t randint(std::int64_t lo, std::int64_t hi) override { return d.np_randint(lo, hi); }
  } boxes(draws);
  const std::vector<loader::SamplerCase> cases{c};
  double checksum = 0;
  const auto run = [&](int n) {
    for (int b = 0; b < n; ++b)
      for (const auto& box : loader::nnunet_batch(boxes, cases, cfg)) {
        // The box is read in place (nnU-Net copies it out with crop_and_pad first; the result is the same).
        const transforms::LoadedPatch in{image.data(), channels, seg.data(), c.shape, box.lbs, cfg.patch_size};
        const auto a = transforms::nnunet_augment(in, s, draws);
        checksum += a.image[a.image.size() / 2];
      }
  };
  run(1);  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  run(batches);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double samples = static_cast<double>(batches) * batch_size;
  fmt::print("{}\n", nlohmann::json{{"what", "segscale nnU-Net data path (sampler + chain), 1 thread"},
                                     {"loader_patch", cfg.patch_size}, {"patch", patch}, {"samples", samples},
                                     {"ms_per_sample", 1000 * sec / samples}, {"samples_per_s", samples / sec},
                                     {"peak_rss_mib", static_cast<double>(ru.ru_maxrss) / 1024}, {"checksum", checksum}}
                         .dump());
  return 0;
}
