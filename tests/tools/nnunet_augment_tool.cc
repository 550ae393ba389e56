// Applies segscale's nnU-Net augmentations (transforms/nnunet_intensity.h, nnunet_targets.h) with given
// parameters, for tests/oracle/test_nnunet_augment.py:
//   nnunet_augment_tool IN_DIR OPS.json OUT_DIR
// IN_DIR/image.npy (C, a0, a1, a2) float32 and IN_DIR/seg.npy (1, a0, a1, a2) int16; OPS: a list of
// {"op": brightness|contrast|gamma|low_resolution, "channel": c, ...parameters} or {"op": mirror, "axes": [...]},
// {"op": mask, "channels": [bool...]}, {"op": remove_label}, {"op": regions, "regions": [[...]...]},
// {"op": downsample, "scales": [[s0, s1, s2], ...]}. Writes OUT/image.npy, OUT/seg.npy and, after regions /
// downsample, OUT/target_K.npy (uint8 regions or int16 labels per scale).
#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/file.h"
#include "io/json_file.h"
#include "io/npy.h"
#include "transforms/nnunet_chain.h"
#include "transforms/nnunet_intensity.h"
#include "transforms/nnunet_spatial.h"
#include "transforms/nnunet_targets.h"

using namespace segscale;
namespace fs = std::filesystem;


template <typename T>
void write_array(const fs::path& p, const std::string& descr, const std::vector<std::int64_t>& shape, const std::vector<T>& v) {
  io::write_file_atomic(p, io::encode_npy(descr, shape, {reinterpret_cast<const std::uint8_t*>(v.data()), v.size() * sizeof(T)}));
}

// --chain IN SETTINGS.json OUT: the whole chain (transforms/nnunet_chain.h) `samples` times on the same input, the
// draws replayed from np.random.seed(numpy_seed) and torch.manual_seed(torch_seed); OUT/image_K.npy,
// OUT/target_K_J.npy (int16), OUT/ledger.json.
int run_chain(const fs::path& in, const fs::path& settings_file, const fs::path& out) {
  fs::create_directories(out);
  std::vector<std::int64_t> ishape, sshape;
  const std::vector<float> image = io::read_npy<float>(in / "image.npy", "<f4", ishape);
  const std::vector<std::int16_t> seg = io::read_npy<std::int16_t>(in / "seg.npy", "<i2", sshape);
  const nlohmann::json j = io::read_json_file(settings_file);
  transforms::NnunetAugmentSettings s;
  s.patch = j.at("patch").get<transforms::Extent3>();
  s.use_mask_for_norm = j.at("use_mask_for_norm").get<std::vector<bool>>();
  s.regions = j.at("regions").get<std::vector<std::vector<int>>>();
  s.ds_scales = j.at("ds_scales").get<std::vector<std::array<double, 3>>>();
  transforms::NnunetReplayDraws draws(j.at("numpy_seed").get<std::uint32_t>(), j.at("torch_seed").get<std::uint32_t>());
  nlohmann::json ledger = nlohmann::json::array();
  for (int k = 0; k < j.at("samples").get<int>(); ++k) {
    const auto a = transforms::nnunet_augment(image.data(), static_cast<int>(ishape[0]), seg.data(), {ishape[1], ishape[2], ishape[3]}, s, draws);
    io::write_npy(out / fmt::format("image_{}.npy", k), {ishape[0], s.patch[0], s.patch[1], s.patch[2]}, a.image);
    for (std::size_t t = 0; t < a.targets.size(); ++t) {
      const auto& sh = a.target_shapes[t];
      write_array(out / fmt::format("target_{}_{}.npy", k, t), "<i2", {a.target_channels, sh[0], sh[1], sh[2]}, a.targets[t]);
    }
    ledger.push_back({{"rotated", a.ledger.rotated}, {"scaled", a.ledger.scaled}, {"angles", a.ledger.angles}, {"zoom", a.ledger.zoom},
                      {"fired", a.ledger.fired}, {"mirrored", a.ledger.mirrored}});
  }
  io::write_file_atomic(out / "ledger.json", ledger.dump());
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--chain") return run_chain(argv[2], argv[3], argv[4]);
  if (argc != 4) {
    fmt::print(stderr, "usage: nnunet_augment_tool IN_DIR OPS.json OUT_DIR\n");
    return 2;
  }
  const fs::path in(argv[1]), out(argv[3]);
  fs::create_directories(out);
  std::vector<std::int64_t> ishape, sshape;
  std::vector<float> image = io::read_npy<float>(in / "image.npy", "<f4", ishape);
  std::vector<std::int16_t> seg = io::read_npy<std::int16_t>(in / "seg.npy", "<i2", sshape);
  const int channels = static_cast<int>(ishape[0]);
  transforms::Extent3 shape{ishape[1], ishape[2], ishape[3]};
  std::size_t n = static_cast<std::size_t>(shape[0] * shape[1] * shape[2]);
  std::vector<std::uint8_t> regions;
  int regions_count = 0;
  for (const auto& op : io::read_json_file(argv[2])) {
    const std::string name = op.at("op");
    float* ch = op.contains("channel") ? image.data() + op.at("channel").get<std::size_t>() * n : nullptr;
    if (name == "spatial") {  // {"patch": [s0, s1, s2], "angles": [a0, a1, a2] or null, "zoom": z or null}
      transforms::NnunetSpatialParams sp;
      if (!op.at("angles").is_null()) {
        sp.rotate = true;
        sp.angles = op.at("angles").get<std::array<double, 3>>();
      }
      if (!op.at("zoom").is_null()) {
        sp.scale = true;
        sp.zoom = op.at("zoom").get<double>();
      }
      const auto patch = op.at("patch").get<transforms::Extent3>();
      const std::size_t m = static_cast<std::size_t>(patch[0] * patch[1] * patch[2]);
      std::vector<float> img2(m * static_cast<std::size_t>(channels));
      std::vector<std::int16_t> seg2(m);
      transforms::nnunet_spatial(image.data(), channels, seg.data(), shape, patch, sp, img2.data(), seg2.data());
      image = std::move(img2);
      seg = std::move(seg2);
      shape = patch;
      n = m;
      ishape = {channels, patch[0], patch[1], patch[2]};
      sshape = {1, patch[0], patch[1], patch[2]};
    } else if (name == "brightness") transforms::nnunet_brightness(ch, n, op.at("multiplier").get<float>());
    else if (name == "contrast") transforms::nnunet_contrast(ch, n, op.at("multiplier").get<float>());
    else if (name == "gamma") transforms::nnunet_gamma(ch, n, op.at("gamma").get<float>(), op.at("invert"), op.at("retain_stats"));
    else if (name == "blur") transforms::nnunet_blur(ch, shape, op.at("sigmas").get<std::array<double, 3>>());
    else if (name == "low_resolution") transforms::nnunet_low_resolution(ch, shape, op.at("zoom").get<float>());
    else if (name == "mirror") {
      const auto axes = op.at("axes").get<std::vector<int>>();
      transforms::nnunet_mirror(image.data(), channels, shape, axes);
      transforms::nnunet_mirror(seg.data(), 1, shape, axes);
    } else if (name == "mask") transforms::nnunet_mask_image(image.data(), channels, seg.data(), shape, op.at("channels").get<std::vector<bool>>());
    else if (name == "remove_label") transforms::nnunet_remove_label(seg.data(), n);
    else if (name == "regions") {
      const auto r = op.at("regions").get<std::vector<std::vector<int>>>();
      regions = transforms::nnunet_regions(seg.data(), n, r);
      regions_count = static_cast<int>(r.size());
    } else if (name == "downsample") {
      int k = 0;
      for (const auto& s : op.at("scales")) {
        transforms::Extent3 o{};
        const auto scale = s.get<std::array<double, 3>>();
        if (regions_count) {
          const auto v = transforms::nnunet_downsample(regions.data(), regions_count, shape, scale, o);
          write_array(out / fmt::format("target_{}.npy", k++), "|u1", {regions_count, o[0], o[1], o[2]}, v);
        } else {
          const auto v = transforms::nnunet_downsample(seg.data(), 1, shape, scale, o);
          write_array(out / fmt::format("target_{}.npy", k++), "<i2", {1, o[0], o[1], o[2]}, v);
        }
      }
    } else {
      fmt::print(stderr, "unknown op {}\n", name);
      return 2;
    }
  }
  io::write_npy(out / "image.npy", ishape, image);
  write_array(out / "seg.npy", "<i2", sshape, seg);
  return 0;
}
