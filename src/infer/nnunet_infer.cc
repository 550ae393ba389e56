#include "infer/nnunet_infer.h"

#include <fmt/format.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

#include "infer/nnunet_predict.h"
#include "io/json_file.h"
#include "io/nifti_image.h"
#include "model/weights.h"
#include "util/error.h"

namespace segscale::infer {
namespace fs = std::filesystem;
using nlohmann::json;

NnunetRun load_nnunet_run(const json& cfg, const fs::path& config_path, std::shared_ptr<model::Network> net) {
  const fs::path dir = config_path.parent_path();
  for (const char* f : {"plans.json", "dataset.json"})
    if (!fs::is_regular_file(dir / f))
      throw error_at((dir / f).string(), "missing: a run of nnU-Net's recipe keeps its plan and dataset.json beside config.json");
  NnunetRun r;
  r.nets = {std::move(net)};
  r.folds = {"the run"};
  const json plans = io::read_json_file(dir / "plans.json");
  const nlohmann::ordered_json dataset = io::read_ordered_json_file(dir / "dataset.json");
  try {
    const json& nn = cfg.at("nnunet");
    const std::string configuration = nn.at("configuration").get<std::string>();
    r.preprocessing = prep::NnunetPreprocessing::from_plans(plans, configuration, dataset, (dir / "plans.json").string());
    r.patch = plans.at("configurations").at(configuration).at("patch_size").get<std::vector<std::int64_t>>();
    const auto channels = nn.at("regions").get<std::vector<std::vector<int>>>();
    for (const auto& region : r.preprocessing.foreground) {
      const auto it = std::find(channels.begin(), channels.end(), region);
      if (it == channels.end()) throw Error(fmt::format("dataset.json's region ({}) is none of the network's outputs", fmt::join(region, ", ")));
      r.channel_of_region.push_back(static_cast<int>(it - channels.begin()));
    }
    if (!dataset.contains("regions_class_order"))
      throw error_at((dir / "dataset.json").string(), "a region dataset without regions_class_order (nnU-Net needs it to turn regions into labels)");
    r.regions_class_order = dataset.at("regions_class_order").get<std::vector<int>>();
    if (r.regions_class_order.size() != r.channel_of_region.size())
      throw error_at((dir / "dataset.json").string(), fmt::format("regions_class_order has {} labels for {} regions", r.regions_class_order.size(),
                                                                  r.channel_of_region.size()));
  } catch (const json::exception& e) {
    throw error_at(config_path.string(), std::string("not a run of nnU-Net's recipe: ") + e.what());
  }
  return r;
}

bool is_nnunet_results_folder(const fs::path& p) {
  if (!fs::is_directory(p) || !fs::is_regular_file(p / "plans.json") || !fs::is_regular_file(p / "dataset.json")) return false;
  for (const auto& e : fs::directory_iterator(p))
    if (e.is_directory() && e.path().filename().string().starts_with("fold_")) return true;
  return false;
}

NnunetRun load_nnunet_results_folder(const fs::path& folder, const std::vector<std::string>& folds, const std::string& configuration_given,
                                     const std::string& checkpoint, const torch::Device& device) {
  const json plans = io::read_json_file(folder / "plans.json");
  const nlohmann::ordered_json dataset = io::read_ordered_json_file(folder / "dataset.json");
  // nnU-Net names the folder TRAINER__PLANS__CONFIGURATION.
  std::string configuration = configuration_given;
  if (configuration.empty()) {
    const std::string name = folder.filename().string();
    const auto cut = name.rfind("__");
    configuration = cut == std::string::npos ? "3d_fullres" : name.substr(cut + 2);
  }
  if (!plans.contains("configurations") || !plans["configurations"].contains(configuration))
    throw error_at((folder / "plans.json").string(), fmt::format("no configuration {} (the folder's name says which; give --configuration)", configuration));
  NnunetRun r;
  r.preprocessing = prep::NnunetPreprocessing::from_plans(plans, configuration, dataset, (folder / "plans.json").string());
  const json& c = plans["configurations"][configuration];
  r.patch = c.at("patch_size").get<std::vector<std::int64_t>>();
  if (!r.preprocessing.regions)
    throw error_at((folder / "dataset.json").string(), "a label (not region) dataset: segscale predicts nnU-Net's region datasets (BraTS) so far");
  for (std::size_t i = 0; i < r.preprocessing.foreground.size(); ++i) r.channel_of_region.push_back(static_cast<int>(i));
  if (!dataset.contains("regions_class_order"))
    throw error_at((folder / "dataset.json").string(), "a region dataset without regions_class_order (nnU-Net needs it to turn regions into labels)");
  r.regions_class_order = dataset.at("regions_class_order").get<std::vector<int>>();
  const json arch = c.at("architecture");
  const std::string cls = arch.value("network_class_name", "");
  if (!cls.ends_with("PlainConvUNet"))
    throw error_at((folder / "plans.json").string(), fmt::format("network {}: segscale builds nnU-Net's PlainConvUNet so far (not ResEnc)", cls));
  json net_config = arch.at("arch_kwargs");
  net_config["name"] = "plainconvunet";
  net_config["input_channels"] = static_cast<int>(r.preprocessing.normalization_schemes.size());
  net_config["num_classes"] = static_cast<int>(r.preprocessing.foreground.size());
  net_config["deep_supervision"] = false;
  std::vector<std::string> names = folds;
  if (names.empty())  // nnU-Net's auto_detect_available_folds: every fold_* with the checkpoint
    for (const auto& e : fs::directory_iterator(folder))
      if (e.is_directory() && e.path().filename().string().starts_with("fold_") && fs::exists(e.path() / checkpoint))
        names.push_back(e.path().filename().string().substr(5));
  std::sort(names.begin(), names.end());
  if (names.empty()) throw error_at(folder.string(), fmt::format("no fold_*/{} in the results folder", checkpoint));
  for (const std::string& f : names) {
    const fs::path ck = folder / ("fold_" + f) / checkpoint;
    if (!fs::exists(ck)) throw error_at(ck.string(), "no such checkpoint");
    std::shared_ptr<model::Network> net = model::make_network(net_config);
    model::load_weights(*net, ck);  // names the file and the missing or mis-shaped weights
    net->to(device);
    net->eval();
    r.nets.push_back(net);
    r.folds.push_back(f);
  }
  return r;
}

InferCaseResult nnunet_infer_case(const NnunetRun& run, const std::vector<fs::path>& images, const fs::path& out,
                                  const torch::Device& device, const std::string& key) {
  const auto t0 = std::chrono::steady_clock::now();
  data::Case c;
  c.key = key;
  c.images = images;
  const std::size_t channels = run.preprocessing.normalization_schemes.size();
  prep::NnunetCase pc = prep::nnunet_preprocess(prep::read_case_arrays(c, channels), run.preprocessing);
  const auto& s = pc.shape;
  torch::Tensor x = torch::from_blob(pc.data.data(), {static_cast<std::int64_t>(channels), s[0], s[1], s[2]}, torch::kFloat32).to(device);
  NnunetPredictOptions po;
  po.patch = run.patch;
  torch::Tensor logits;
  {
    torch::NoGradGuard g;
    // nnUNetPredictor.predict_logits_from_preprocessed_data: the folds' float16 logits summed, then divided by their count.
    for (const auto& net : run.nets) {
      torch::Tensor l = nnunet_predict_logits(x, [&](const torch::Tensor& t) { return net->forward(t); }, po).cpu();
      logits = logits.defined() ? logits + l : l;
    }
    if (run.nets.size() > 1) logits = logits / static_cast<double>(run.nets.size());
  }
  // LabelManager: sigmoid of the float16 logits in float32; regions painted in regions_class_order.
  const torch::Tensor fg = (torch::sigmoid(logits.to(torch::kFloat32)) > 0.5).to(torch::kUInt8).cpu().contiguous();
  const std::int64_t n = s[0] * s[1] * s[2];
  std::vector<std::uint8_t> seg(static_cast<std::size_t>(n), 0);
  const std::uint8_t* p = fg.data_ptr<std::uint8_t>();
  for (std::size_t i = 0; i < run.channel_of_region.size(); ++i) {
    const std::uint8_t* ch = p + run.channel_of_region[i] * n;
    const auto label = static_cast<std::uint8_t>(run.regions_class_order[i]);
    for (std::int64_t v = 0; v < n; ++v)
      if (ch[v]) seg[static_cast<std::size_t>(v)] = label;
  }
  InferCaseResult r;
  r.key = key;
  r.out = out;
  for (int k = 0; k < 3; ++k) {  // WT, TC, ET voxels: the network's channels TC, WT, ET
    const std::uint8_t* ch = p + (k == 0 ? 1 : k == 1 ? 0 : 2) * n;
    for (std::int64_t v = 0; v < n; ++v) r.voxels[static_cast<std::size_t>(k)] += ch[v];
  }
  const std::vector<std::uint8_t> on_case = prep::nnunet_revert_cropping(seg, pc, run.preprocessing.transpose_forward);
  std::array<std::int64_t, 3> disk{};  // the case's own (z, y, x) shape: shape_before_cropping transposed back
  for (int d = 0; d < 3; ++d)
    disk[static_cast<std::size_t>(run.preprocessing.transpose_forward[static_cast<std::size_t>(d)])] = pc.shape_before_cropping[static_cast<std::size_t>(d)];
  // (z, y, x) C order is the file's own voxel order: written as it is, on the input's grid and header.
  const io::NiftiHeader h = io::label_header_like(io::read_nifti_header(images.front()), {disk[2], disk[1], disk[0]},
                                                  "segscale prediction (nnU-Net), the dataset's labels");
  io::write_nifti(out, h, on_case);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace segscale::infer
