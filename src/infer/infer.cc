#include "infer/infer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "data/catalog.h"
#include "infer/nnunet_infer.h"
#include "infer/preview.h"
#include "infer/tta.h"
#include "io/file.h"
#include "io/json_file.h"
#include "io/nifti_image.h"
#include "model/sliding_window.h"
#include "model/network.h"
#include "model/scripted_network.h"
#include "model/weights.h"
#include "transforms/intensity.h"
#include "transforms/load.h"
#include "transforms/pipeline.h"
#include "transforms/spacing.h"
#include "util/error.h"
#include "util/parallel.h"
#include "util/plural.h"

namespace segscale::infer {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace segscale::transforms;

namespace {

struct Loaded {
  std::shared_ptr<model::Network> net;
  int in_channels = 4;
  std::vector<std::string> modalities;  // the run's channel names in order, when known
  Pipeline pipeline;
  Shape3 roi{128, 128, 64};
  const data::LabelMap* map = nullptr;
  std::optional<NnunetRun> nnunet;  // a run of nnU-Net's recipe
  double overlap = 0.25;            // --overlap, else the run's sw_overlap
};

// The run's modality names: config.json's "modalities", else its store's settings.json, else its raw dataset's.
std::vector<std::string> run_modalities(const json& cfg) {
  if (cfg.contains("modalities") && cfg["modalities"].is_array()) return cfg["modalities"].get<std::vector<std::string>>();
  if (!cfg.contains("store") || !cfg["store"].is_string()) return {};
  const fs::path src = cfg["store"].get<std::string>();
  try {
    if (fs::is_regular_file(src / "settings.json")) {
      const json st = io::read_json_file(src / "settings.json");
      return st.at("dataset").at("modalities").get<std::vector<std::string>>();
    }
    if (cfg.value("store_mode", "") == "raw") return data::open_catalog(src).modalities;
  } catch (const std::exception&) {
    // moved or unreadable: the names stay unknown and only the channel count is checked
  }
  return {};
}

// The inputs against what the model was trained on: the channel count, and the order where BraTS file names show it.
void check_inputs(const Loaded& l, const std::vector<fs::path>& images, std::int64_t channels) {
  const std::string names = l.modalities.empty() ? std::string() : fmt::format(" ({})", fmt::join(l.modalities, ", "));
  std::vector<std::string> files;
  for (const auto& f : images) files.push_back(f.filename().string());
  if (channels != l.in_channels)
    throw Error(fmt::format("the model takes {}{}, but the input has {} ({}); give --image one 4-D file or one file per modality, "
                            "comma-separated", plural(l.in_channels, "modality", "modalities"), names.empty() ? names : names + " in that order",
                            plural(channels, "channel"), fmt::join(files, ", ")));
  if (images.size() != l.modalities.size()) return;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const data::FileNaming n = data::brats_naming(images[i]);
    if (n.modality.empty() || std::find(l.modalities.begin(), l.modalities.end(), n.modality) == l.modalities.end()) continue;
    if (n.modality != l.modalities[i])
      throw Error(fmt::format("{}: a {} scan given as channel {}, where the model was trained on {}; give --image in the order{}",
                              images[i].string(), n.modality, i, l.modalities[i], names));
  }
}

Loaded load_model(const InferOptions& o, const torch::Device& device) {
  if (is_nnunet_results_folder(o.model)) {  // nnU-Net's own training output: its predictor (nnunet_infer.h)
    if (o.probabilities || o.tta != "none" || wants_preview(o.preview) || o.blend != "constant" || !o.label_map.empty())
      throw UsageError("an nnU-Net results folder predicts as nnU-Net does (Gaussian blending, step 0.5, mirroring, the dataset's labels): "
                       "--probabilities, --tta, --blend, --preview and --label-map do not apply");
    Loaded l;
    l.nnunet = load_nnunet_results_folder(o.model, o.folds, o.configuration, o.checkpoint, device);
    if (!o.quiet)
      fmt::print(stderr, "infer: nnU-Net results folder {}, folds {}\n", o.model.string(), fmt::join(l.nnunet->folds, ", "));
    return l;
  }
  if (!o.folds.empty() || !o.configuration.empty() || o.checkpoint != "checkpoint_final.pth")
    throw UsageError(fmt::format("--folds, --configuration and --checkpoint choose from an nnU-Net results folder (plans.json, dataset.json, "
                                 "fold_*/); {} is not one", o.model.string()));
  if (!fs::is_regular_file(o.model))
    throw error_at(o.model.string(), "no such model file (a training run writes RUN/model.pt, its best weights, and RUN/last.pt)");
  // A TorchScript file from `segscale export` carries its run's config.json.
  const std::optional<json> embedded = model::exported_run_config(o.model);
  fs::path cfg_path = o.config.empty() ? o.model.parent_path() / "config.json" : o.config;
  if (embedded && o.config.empty()) cfg_path = o.model;
  if (!embedded && !fs::exists(cfg_path))
    throw error_at(cfg_path.string(), "the training run's config.json is needed beside the model (or pass --config)");
  const json cfg = embedded && o.config.empty() ? *embedded : io::read_json_file(cfg_path);
  Loaded l;
  // The run's network: config.json's "model" (Network::config()), or for runs before it the UNet's keys.
  const nlohmann::json net_config = cfg.contains("model") ? cfg["model"]
                                                          : nlohmann::json{{"name", "unet"},
                                                                           {"in_channels", cfg.value("in_channels", 4)},
                                                                           {"out_channels", cfg.value("out_channels", 3)},
                                                                           {"channels", cfg.value("channels", std::vector<int>{16, 32, 64, 128, 256})},
                                                                           {"strides", cfg.value("strides", std::vector<int>{2, 2, 2, 2})},
                                                                           {"num_res_units", cfg.value("res_units", 2)}};
  try {
    l.net = embedded ? std::make_shared<model::ScriptedNetwork>(o.model, net_config) : model::make_network(net_config);
  } catch (const UsageError& e) {
    throw error_at(cfg_path.string(), std::string("cannot build the run's model: ") + e.what());
  }
  l.in_channels = l.net->in_channels();
  l.modalities = run_modalities(cfg);
  try {
    if (!embedded) model::load_weights(*l.net, o.model);
  } catch (const Error&) {
    if (o.model.filename().string().starts_with("checkpoint"))
      throw error_at(o.model.string(), "a training checkpoint (what segscale train resumes from), not model weights; use "
                                       "RUN/model.pt (the best weights) or RUN/last.pt");
    throw;
  }
  l.net->to(device);
  l.net->eval();
  if (cfg.value("store_mode", "") == "nnunet") {  // nnU-Net's recipe: its preprocessing and predictor (nnunet_infer.h)
    if (embedded) throw error_at(o.model.string(), "a TorchScript file of nnU-Net's recipe: predict with the run folder's model.pt or last.pt");
    if (o.probabilities || o.tta != "none" || wants_preview(o.preview) || o.blend != "constant" || !o.label_map.empty())
      throw UsageError("a run of nnU-Net's recipe predicts as nnU-Net does (Gaussian blending, step 0.5, mirroring, the dataset's labels): "
                       "--probabilities, --tta, --blend, --preview and --label-map do not apply");
    l.nnunet = load_nnunet_run(cfg, cfg_path, l.net);
    return l;
  }
  l.overlap = o.overlap.value_or(cfg.contains("sw_overlap") && cfg["sw_overlap"].is_number() ? cfg["sw_overlap"].get<double>() : 0.25);
  if (!(l.overlap >= 0 && l.overlap < 1)) throw UsageError(fmt::format("--overlap {} is out of range: in [0, 1)", l.overlap));
  l.pipeline = Pipeline::from_json(cfg.at("pipeline"), cfg_path.string());
  for (const auto& s : l.pipeline.steps)
    if (auto* c = std::get_if<RandCropStep>(&s)) l.roi = c->roi;
  if (cfg.contains("val_roi") && cfg["val_roi"].is_array()) l.roi = cfg["val_roi"].get<Shape3>();
  l.map = &data::label_map_preset(o.label_map.empty() ? cfg.value("label_map", l.pipeline.label_map) : o.label_map);
  return l;
}

// Disk layout (x fastest) of a [X,Y,Z] z-fastest grid channel.
template <typename T, typename U>
void to_disk(const T* src, U* dst, const Shape3& s) {
  for (std::int64_t x = 0; x < s[0]; ++x)
    for (std::int64_t y = 0; y < s[1]; ++y)
      for (std::int64_t z = 0; z < s[2]; ++z) dst[x + s[0] * (y + s[1] * z)] = static_cast<U>(src[(x * s[1] + y) * s[2] + z]);
}

InferCaseResult infer_case(Loaded& l, const std::vector<fs::path>& images, const fs::path& out, const fs::path& preview, const InferOptions& o,
                           const torch::Device& device, const std::string& key) {
  if (l.nnunet) return nnunet_infer_case(*l.nnunet, images, out, device, key);
  auto t0 = std::chrono::steady_clock::now();
  const io::NiftiHeader in_header = io::read_nifti_header(images.front());
  Sample s;
  s.image = load_image(images);
  check_inputs(l, images, s.image.channels);
  const Shape3 in_size = s.image.size;
  const Affine in_affine = s.image.affine;
  // The deterministic steps of training, then the normalisation (the random steps are training-only).
  Pipeline det;
  det.label_map = l.pipeline.label_map;
  for (const auto& step : l.pipeline.steps)
    if (std::holds_alternative<SpacingStep>(step) || std::holds_alternative<OrientationStep>(step)) det.steps.push_back(step);
  Sample p = run_cached_stage(det, std::move(s), resolve_threads(o.threads));
  Volume normalised = p.image;
  bool nonzero = true, channel_wise = true;
  for (const auto& step : l.pipeline.steps)
    if (auto* n = std::get_if<NormalizeStep>(&step)) nonzero = n->nonzero, channel_wise = n->channel_wise;
  normalize_intensity(normalised, nonzero, channel_wise, images.front().string());
  torch::Tensor x = torch::from_blob(normalised.data.data(), {1, normalised.channels, normalised.size[0], normalised.size[1], normalised.size[2]},
                                     torch::kFloat32)
                        .to(device);
  torch::Tensor prob;
  {
    torch::NoGradGuard g;
    model::SlidingWindowOptions sw;
    sw.roi = l.roi;
    sw.overlap = l.overlap;
    sw.sw_batch = o.sw_batch;
    sw.mode = o.blend;
    // --tta: the sigmoid of one sliding window, or the mean over the 8 flips (infer/tta.h).
    prob = tta_probabilities(
        x, [&](const torch::Tensor& v) { return model::sliding_window_inference(v, [&](const torch::Tensor& b) { return l.net->forward(b); }, sw); },
        o.tta);
  }
  prob = prob.cpu().contiguous();
  torch::Tensor bin = (prob >= 0.5).to(torch::kUInt8).contiguous();
  // Channels to one region map: ET over TC over WT (the nesting BraTS defines).
  LabelVolume regions = LabelVolume::make(1, p.image.size, p.image.affine);
  const std::int64_t n = p.image.voxels();
  const std::uint8_t* tc = bin.data_ptr<std::uint8_t>();
  const std::uint8_t *wt = tc + n, *et = tc + 2 * n;
  for (std::int64_t i = 0; i < n; ++i) regions.data[i] = et[i] ? 3 : tc[i] ? 2 : wt[i] ? 1 : 0;
  // Back onto the input's own grid: nearest for labels, trilinear for probabilities.
  SpacingPlan back;
  back.in_size = p.image.size;
  back.out_size = in_size;
  back.out_affine = in_affine;
  back.index_map = inverse(p.image.affine) * in_affine;
  back.identity = false;
  LabelVolume on_input = resample_nearest(regions, back);
  const auto values = l.map->region_values();
  std::vector<std::uint8_t> disk(static_cast<std::size_t>(in_size[0] * in_size[1] * in_size[2]));
  InferCaseResult r;
  r.key = key;
  r.out = out;
  {
    std::vector<std::uint8_t> mapped(on_input.data.size());
    for (std::size_t i = 0; i < mapped.size(); ++i) {
      const std::uint8_t reg = on_input.data[i];
      mapped[i] = reg ? static_cast<std::uint8_t>(values[reg - 1]) : 0;
      r.voxels[0] += reg >= 1;
      r.voxels[1] += reg >= 2;
      r.voxels[2] += reg == 3;
    }
    to_disk(mapped.data(), disk.data(), in_size);
  }
  io::NiftiHeader h = io::label_header_like(in_header, in_size, fmt::format("segscale prediction, labels {}", l.map->name));
  io::write_nifti(out, h, disk);
  if (o.probabilities) {
    Volume pv = Volume::make(3, p.image.size, p.image.affine);
    std::memcpy(pv.data.data(), prob.data_ptr<float>(), pv.data.size() * sizeof(float));
    Volume back_p = resample_bilinear(pv, back, {}, resolve_threads(o.threads));
    std::vector<float> d(back_p.data.size());
    const std::int64_t m = in_size[0] * in_size[1] * in_size[2];
    for (int c = 0; c < 3; ++c) to_disk(back_p.channel(c), d.data() + c * m, in_size);
    io::NiftiHeader ph = h;
    ph.dim[0] = 4;
    ph.dim[4] = 3;
    ph.datatype = io::DType::kFloat32;
    ph.descrip = "segscale probabilities TC, WT, ET";
    std::string name = out.string();
    for (const char* ext : {".nii.gz", ".nii"})
      if (io::has_suffix(name, ext)) {
        name.resize(name.size() - std::strlen(ext));
        break;
      }
    io::write_nifti(name + "_probabilities.nii.gz", ph, {reinterpret_cast<const std::uint8_t*>(d.data()), d.size() * sizeof(float)});
  }
  if (!preview.empty()) {
    const auto vs = voxel_sizes(in_affine);
    const double ml = vs[0] * vs[1] * vs[2] / 1000.0;
    write_preview(preview, p.image, regions, 0,
                  fmt::format("{}  WT {:.1f} ML  TC {:.1f} ML  ET {:.1f} ML", key, r.voxels[0] * ml, r.voxels[1] * ml, r.voxels[2] * ml),
                  {in_size, in_affine});
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

bool wants_preview(const fs::path& preview) {
  const std::string v = preview.string();
  return !v.empty() && v != "no" && v != "false" && v != "0" && v != "off";
}

std::vector<InferCaseResult> run_infer(const InferOptions& o) {
  if (o.device != "cpu" && o.device != "cuda") throw UsageError("--device must be cpu or cuda");
  if (o.tta != "none" && o.tta != "flip") throw UsageError("--tta must be none or flip");
  if (o.device == "cuda" && !torch::cuda::is_available()) throw UsageError("--device cuda: this libtorch has no CUDA or no GPU is visible");
  const bool one = !o.images.empty();
  if (one == !o.data.empty()) throw UsageError("give either --image IMG[,IMG...] --out SEG.nii.gz, or --data DATASET --out-dir DIR");
  if (one && o.out.empty()) throw UsageError("--out SEG.nii.gz is required with --image");
  if (!one && o.out_dir.empty()) throw UsageError("--out-dir DIR is required with --data");
  at::set_num_threads(resolve_threads(o.threads));
  const torch::Device device(o.device == "cuda" ? torch::kCUDA : torch::kCPU);
  Loaded l = load_model(o, device);
  std::vector<InferCaseResult> results;
  if (one) {
    results.push_back(infer_case(l, o.images, o.out, wants_preview(o.preview) ? o.preview : fs::path(), o, device,
                                 data::case_key_from_files(o.images)));
    return results;
  }
  data::Catalog cat = data::open_catalog(o.data);
  fs::create_directories(o.out_dir);
  int skipped = 0;
  for (const auto* list : {&cat.training, &cat.test})
    for (const auto& c : *list) {
      fs::path prev = wants_preview(o.preview) ? o.out_dir / (c.key + ".png") : fs::path();
      try {
        results.push_back(infer_case(l, c.images, o.out_dir / (c.key + ".nii.gz"), prev, o, device, c.key));
      } catch (const Error& e) {
        if (!o.skip_bad) throw Error(fmt::format("case {}: {} (--skip-bad would skip it and go on)", c.key, e.what()));
        ++skipped;
        fmt::print(stderr, "segscale infer: skipping case {}: {}\n", c.key, e.what());
        continue;
      }
      if (!o.quiet) fmt::print(stderr, "infer: {} done ({:.1f} s)\n", c.key, results.back().seconds);
    }
  if (skipped && results.empty()) throw Error(fmt::format("{}: every case failed ({} skipped, see above)", o.data.string(), skipped));
  if (skipped) fmt::print(stderr, "segscale infer: {} skipped (see above)\n", plural(skipped, "case"));
  return results;
}

}  // namespace segscale::infer
