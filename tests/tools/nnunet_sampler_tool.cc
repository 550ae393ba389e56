// Runs segscale's nnU-Net sampler (loader/nnunet_sampler.h) for tests/oracle/test_nnunet_sampler.py:
//   nnunet_sampler_tool SPEC.json OUT_DIR
//   nnunet_sampler_tool --folds KEYS.json FOLD   (nnU-Net's 5-fold split of the keys, and the split of FOLD, as JSON)
// SPEC: {"seed", "batches", "batch_size", "patch_size", "final_patch_size", "channels",
//        "cases": [{"shape": [a0, a1, a2], "class_locations": [[[0, i0, i1, i2], ...], ...]}]}
// Each case's image is c * 1e6 + (its C-order voxel index) and its segmentation (index % 5) - 1, as the oracle
// builds them. Writes OUT/boxes.json (per batch and slot: case, forced, lbs, ubs), OUT/image.npy (batches x B, C,
// patch) float32 and OUT/seg.npy (batches x B, 1, patch) int16.
#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <nlohmann/json.hpp>

#include "io/file.h"
#include "io/json_file.h"
#include "io/npy.h"
#include "loader/nnunet_sampler.h"
#include "train/split.h"

using namespace segscale;

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--initial-patch") {  // nnunet_sampler_tool --initial-patch S0 S1 S2
    const auto p = loader::nnunet_initial_patch_size({std::stoll(argv[2]), std::stoll(argv[3]), std::stoll(argv[4])});
    fmt::print("[{}, {}, {}]\n", p[0], p[1], p[2]);
    return 0;
  }
  if (argc == 4 && std::string(argv[1]) == "--folds") {  // nnunet_sampler_tool --folds KEYS.json FOLD: train/split.h's folds
    const auto keys = io::read_json_file(argv[2]).get<std::vector<std::string>>();
    const auto folds = train::nnunet_kfold(keys);
    nlohmann::json j = {{"folds", nlohmann::json::array()}};
    for (const auto& f : folds) j["folds"].push_back({{"train", f.train}, {"val", f.val}});
    const auto f = train::nnunet_fold(folds, keys, std::stoi(argv[3]));
    j["fold"] = {{"train", f.train}, {"val", f.val}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  if (argc != 3) {
    fmt::print(stderr, "usage: nnunet_sampler_tool SPEC.json OUT_DIR\n");
    return 2;
  }
  const nlohmann::json spec = io::read_json_file(argv[1]);
  const std::filesystem::path out(argv[2]);
  std::filesystem::create_directories(out);
  loader::NnunetSamplerConfig cfg;
  cfg.batch_size = spec.at("batch_size");
  cfg.patch_size = spec.at("patch_size").get<loader::Int3>();
  cfg.final_patch_size = spec.at("final_patch_size").get<loader::Int3>();
  const int channels = spec.at("channels");
  std::vector<loader::SamplerCase> cases;
  std::vector<std::vector<float>> images;
  std::vector<std::vector<std::int16_t>> segs;
  for (const auto& c : spec.at("cases")) {
    loader::SamplerCase sc;
    sc.shape = c.at("shape").get<loader::Int3>();
    sc.class_locations = c.at("class_locations").get<std::vector<std::vector<std::array<std::int64_t, 4>>>>();
    const std::int64_t n = sc.shape[0] * sc.shape[1] * sc.shape[2];
    std::vector<float> img(static_cast<std::size_t>(n * channels));
    std::vector<std::int16_t> seg(static_cast<std::size_t>(n));
    for (int ch = 0; ch < channels; ++ch)
      for (std::int64_t i = 0; i < n; ++i) img[static_cast<std::size_t>(ch * n + i)] = static_cast<float>(ch * 1000000 + i);
    for (std::int64_t i = 0; i < n; ++i) seg[static_cast<std::size_t>(i)] = static_cast<std::int16_t>(i % 5 - 1);
    cases.push_back(sc);
    images.push_back(std::move(img));
    segs.push_back(std::move(seg));
  }
  loader::NumpyDraws draws(spec.at("seed").get<std::uint32_t>());
  const int batches = spec.at("batches");
  const std::int64_t pv = cfg.patch_size[0] * cfg.patch_size[1] * cfg.patch_size[2];
  std::vector<float> image_out(static_cast<std::size_t>(batches * cfg.batch_size * channels * pv));
  std::vector<std::int16_t> seg_out(static_cast<std::size_t>(batches * cfg.batch_size * pv));
  nlohmann::json boxes = nlohmann::json::array();
  for (int b = 0; b < batches; ++b) {
    nlohmann::json batch = nlohmann::json::array();
    const auto slots = loader::nnunet_batch(draws, cases, cfg);
    for (std::size_t j = 0; j < slots.size(); ++j) {
      const auto& s = slots[j];
      batch.push_back({{"case", s.case_index}, {"forced", s.force_fg}, {"lbs", s.lbs}, {"ubs", s.ubs}});
      const std::size_t slot = static_cast<std::size_t>(b * cfg.batch_size) + j;
      loader::crop_and_pad(images[s.case_index].data(), channels, segs[s.case_index].data(), cases[s.case_index].shape, s,
                           image_out.data() + slot * static_cast<std::size_t>(channels * pv), seg_out.data() + slot * static_cast<std::size_t>(pv));
    }
    boxes.push_back(batch);
  }
  io::write_file_atomic(out / "boxes.json", boxes.dump());
  const std::vector<std::int64_t> ishape{batches * cfg.batch_size, channels, cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]};
  io::write_npy(out / "image.npy", ishape, image_out);
  const std::vector<std::int64_t> sshape{batches * cfg.batch_size, 1, cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]};
  io::write_file_atomic(out / "seg.npy", io::encode_npy("<i2", sshape, {reinterpret_cast<const std::uint8_t*>(seg_out.data()), seg_out.size() * 2}));
  return 0;
}
