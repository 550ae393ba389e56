#include "infer/nnunet_infer.h"

#include <fmt/format.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

#include "infer/nnunet_predict.h"
#include "io/json_file.h"
#include "io/nifti_image.h"
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
  r.net = std::move(net);
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

InferCaseResult nnunet_infer_case(const NnunetRun& run, const std::vector<fs::path>& images, const fs::path& out, const InferOptions& o,
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
    logits = nnunet_predict_logits(x, [&](const torch::Tensor& t) { return run.net->forward(t); }, po);
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
  io::NiftiHeader h = io::read_nifti_header(images.front());  // the input's geometry; (z, y, x) C order is the file's own order
  h.dim.fill(1);
  h.dim[0] = 3;
  std::array<std::int64_t, 3> disk{};  // the case's own (z, y, x) shape: shape_before_cropping transposed back
  for (int d = 0; d < 3; ++d) disk[static_cast<std::size_t>(run.preprocessing.transpose_forward[static_cast<std::size_t>(d)])] = pc.shape_before_cropping[static_cast<std::size_t>(d)];
  for (int i = 0; i < 3; ++i) h.dim[static_cast<std::size_t>(i + 1)] = disk[static_cast<std::size_t>(2 - i)];
  h.datatype = io::DType::kUint8;
  h.scl_slope = 1;
  h.scl_inter = 0;
  h.cal_min = 0;
  h.cal_max = 0;
  h.intent_code = 0;
  h.pair = false;
  h.big_endian = false;
  h.descrip = "segscale prediction (nnU-Net), the dataset's labels";
  io::write_nifti(out, h, on_case);
  (void)o;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace segscale::infer
