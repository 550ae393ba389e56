// segscale infer / eval / plot: from a trained model to segmentations, scores and pictures.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/label_map.h"
#include "infer/eval.h"
#include "io/file.h"
#include "storage/staging.h"
#include "storage/storage.h"
#include "train/plot.h"
#include "util/error.h"
#include "util/plural.h"
#ifdef SEGSCALE_HAVE_TORCH
#include "infer/infer.h"
#endif

namespace segscale::cli {
namespace fs = std::filesystem;

#ifdef SEGSCALE_HAVE_TORCH
void add_infer_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("infer", "Segment scans with a trained model; output on each scan's own grid and header");
  cmd->footer(label_map_help());
  auto o = std::make_shared<infer::InferOptions>();
  auto images = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--model", o->model, "RUN/model.pt (best weights) or RUN/last.pt, config.json beside it; a TorchScript file from segscale export (its config inside); "
                  "or an nnU-Net results folder (plans.json, dataset.json, fold_N/checkpoint_final.pth: predicted as nnUNetv2_predict does)")->required();
  cmd->add_option("--folds", o->folds, "--model FOLDER (an nnU-Net results folder): the folds to ensemble (default: every fold_* with the checkpoint)")
      ->delimiter(',');
  cmd->add_option("--configuration", o->configuration, "--model FOLDER: the plan's configuration (default: from the folder's name, "
                  "TRAINER__PLANS__CONFIGURATION)");
  cmd->add_option("--checkpoint", o->checkpoint, "--model FOLDER: each fold's checkpoint file")->capture_default_str();
  cmd->add_option("--config", o->config, "The training run's config.json (default: beside the model)");
  cmd->add_option("--image", *images, "One case: a 4-D file, or one file per modality (comma-separated, in the training run's modality order)")->delimiter(',');
  cmd->add_option("--out", o->out, "One case: output segmentation .nii.gz (the case key is <KEY> of BraTS names <KEY>_flair.nii.gz, else the first file's name)");
  cmd->add_option("--data", o->data, "A dataset folder (dataset.json or BraTS folders) to segment whole");
  cmd->add_option("--out-dir", o->out_dir, "With --data: folder for <case>.nii.gz (and <case>.png with --preview yes)");
  cmd->add_option("--preview", o->preview,
                  "PNG with axial/coronal/sagittal slices through the tumour, slice numbers in the scan's voxel indices (one case: the "
                  "PNG's path; with --data: yes writes <case>.png; no: none)");
  cmd->add_flag("--probabilities", o->probabilities, "Also write the TC/WT/ET probabilities as float (<out>_probabilities.nii.gz)");
  cmd->add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--overlap", o->overlap, "Sliding-window overlap (default: the run's, what it validated with, e.g. 0.5 for monai-brats; "
                  "0.25 for runs without one)");
  cmd->add_option("--sw-batch", o->sw_batch, "Windows per forward pass")->capture_default_str();
  cmd->add_option("--blend", o->blend, "Window blending")->check(CLI::IsMember({"constant", "gaussian"}))->capture_default_str();
  cmd->add_option("--tta", o->tta, "Test-time augmentation: none (default), or flip (mean sigmoid probability over the 8 flips of the three axes, as nnU-Net's mirroring; 8x the time)")
      ->check(CLI::IsMember({"none", "flip"}));
  cmd->add_option("--label-map", o->label_map, "Label values to write (default: the training run's preset)");
  cmd->add_flag("--quiet", o->quiet, "With --data: no line per finished case");
  cmd->add_flag("--skip-bad", o->skip_bad, "With --data: report a case that fails and go on with the others (default: stop)");
  cmd->callback([o, images] {
    if (o->skip_bad && o->data.empty()) throw UsageError("--skip-bad applies to --data DATASET (a single --image case either works or fails)");
    // s3:// paths: inputs fetched into a private folder first, outputs uploaded once every case is done.
    storage::Staging staging;
    const std::string model_url = o->model.string(), out_url = o->out.string(), out_dir_url = o->out_dir.string();
    o->model = staging.input_file(model_url);
    if (storage::is_url(model_url) && o->config.empty())  // config.json beside the model, as on disk
      staging.input_file(storage::split_parent(model_url).first + "/config.json", false);
    if (!o->config.empty()) o->config = staging.input_file(o->config.string());
    for (const auto& i : *images) o->images.emplace_back(staging.input_file(i));
    if (!o->data.empty()) o->data = staging.input_folder(o->data.string());
    if (!o->out.empty()) o->out = staging.output_file(out_url);
    if (!o->out_dir.empty()) o->out_dir = staging.output_folder(out_dir_url);
    if (storage::is_url(o->preview.string())) o->preview = staging.output_file(o->preview.string());
    // --out NEWDIR/case.nii.gz (and a --preview path) create their folder, as --out-dir and train --out do.
    for (const fs::path& f : {o->out, infer::wants_preview(o->preview) && o->data.empty() ? o->preview : fs::path()})
      if (!f.empty() && !f.parent_path().empty()) fs::create_directories(f.parent_path());
    const auto results = infer::run_infer(*o);
    staging.upload();
    auto shown = [&](const fs::path& written) {  // where the user will find it
      if (storage::is_url(out_url) && written == o->out) return out_url;
      if (storage::is_url(out_dir_url)) return out_dir_url + "/" + fs::relative(written, o->out_dir).generic_string();
      return written.string();
    };
    for (const auto& r : results)
      fmt::print("{}: WT {} TC {} ET {} voxels -> {} ({:.2f} s)\n", r.key, r.voxels[0], r.voxels[1], r.voxels[2], shown(r.out), r.seconds);
  });
}
#endif

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Dice and 95% Hausdorff distance (mm) of TC/WT/ET per case, as BraTS scores them");
  cmd->footer(label_map_help());
  auto pred = std::make_shared<std::string>(), truth = std::make_shared<std::string>(), preset = std::make_shared<std::string>(),
       csv = std::make_shared<std::string>();
  cmd->add_option("--pred", *pred, "Folder of <case>.nii.gz predictions")->required();
  cmd->add_option("--truth", *truth, "Folder of same-named label files, or the dataset")->required();
  auto pred_preset = std::make_shared<std::string>(), truth_preset = std::make_shared<std::string>();
  cmd->add_option("--label-map", *preset,
                  "Label numbering of both (blog, msd, brats21, brats23; see segscale --help); default: each its own data's (below)");
  cmd->add_option("--pred-label-map", *pred_preset,
                  "The predictions' numbering (default: the one segscale infer wrote them in, else the truth's)");
  cmd->add_option("--truth-label-map", *truth_preset,
                  "The truth's numbering (default: its dataset's or BraTS file names', else the predictions')");
  auto json_out = std::make_shared<std::string>();
  cmd->add_option("--csv", *csv, "Write the table here (default: PRED/scores.csv)");
  cmd->add_option("--json", *json_out, "Also write the scores, means and counts (scored, truth cases without a prediction) as JSON here");
  cmd->callback([=] {
    storage::Staging staging;  // s3:// folders are fetched first; the table is uploaded at the end
    const std::string pred_local = staging.input_folder(*pred).string(), truth_local = staging.input_folder(*truth).string();
    const std::string csv_url = csv->empty() ? (storage::is_url(*pred) ? *pred + "/scores.csv" : (fs::path(*pred) / "scores.csv").string()) : *csv;
    const infer::EvalLabelMaps maps = infer::choose_eval_label_maps(pred_local, truth_local, *preset, *pred_preset, *truth_preset);
    const auto& pred_map = data::label_map_preset(maps.pred);
    const auto& map = data::label_map_preset(maps.truth);
    if (maps.pred == maps.truth) {  // one map: the source that decided it (infer's header first, as before)
      const bool from_header = maps.pred_source.starts_with("the predictions' header");
      fmt::print("label map {} ({}) from {}\n", map.name, map.describe(), from_header ? maps.pred_source : maps.truth_source);
    } else {
      fmt::print("predictions: label map {} ({}) from {}\n", pred_map.name, pred_map.describe(), maps.pred_source);
      fmt::print("truth: label map {} ({}) from {}\n", map.name, map.describe(), maps.truth_source);
    }
    auto scores = infer::evaluate(pred_local, truth_local, pred_map, map);
    const auto unpredicted = infer::truth_without_prediction(pred_local, truth_local);
    std::string table = "case,dice_tc,dice_wt,dice_et,hd95_tc,hd95_wt,hd95_et\n";
    std::array<double, 6> sum{};
    fmt::print("{:<24} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}\n", "case", "Dice TC", "Dice WT", "Dice ET", "HD95 TC", "HD95 WT", "HD95 ET");
    for (const auto& s : scores) {
      fmt::print("{:<24} {:8.4f} {:8.4f} {:8.4f} {:9.2f} {:9.2f} {:9.2f}\n", s.key, s.dice[0], s.dice[1], s.dice[2], s.hd95[0], s.hd95[1], s.hd95[2]);
      table += fmt::format("{},{:.6f},{:.6f},{:.6f},{:.4f},{:.4f},{:.4f}\n", s.key, s.dice[0], s.dice[1], s.dice[2], s.hd95[0], s.hd95[1], s.hd95[2]);
      for (int c = 0; c < 3; ++c) sum[c] += s.dice[c], sum[3 + c] += s.hd95[c];
    }
    const double n = static_cast<double>(scores.size());
    fmt::print("{:<24} {:8.4f} {:8.4f} {:8.4f} {:9.2f} {:9.2f} {:9.2f}\n", "mean", sum[0] / n, sum[1] / n, sum[2] / n, sum[3] / n, sum[4] / n, sum[5] / n);
    table += fmt::format("mean,{:.6f},{:.6f},{:.6f},{:.4f},{:.4f},{:.4f}\n", sum[0] / n, sum[1] / n, sum[2] / n, sum[3] / n, sum[4] / n, sum[5] / n);
    if (!unpredicted.empty()) {  // scored only where there are predictions: say which truth cases were left out
      std::string names;
      for (std::size_t i = 0; i < unpredicted.size() && i < 10; ++i) names += (i ? ", " : "") + unpredicted[i];
      if (unpredicted.size() > 10) names += fmt::format(", ... ({} more)", unpredicted.size() - 10);
      fmt::print("not scored: {} without a prediction in {}: {} (the mean is over {} scored)\n",
                 plural(static_cast<std::int64_t>(unpredicted.size()), "truth case"), *pred, names,
                 plural(static_cast<std::int64_t>(scores.size()), "case"));
    }
    io::write_file_atomic(staging.output_file(csv_url), table);
    if (!json_out->empty()) {
      auto channels = [](const std::array<double, 3>& v) { return nlohmann::json{{"tc", v[0]}, {"wt", v[1]}, {"et", v[2]}}; };
      nlohmann::json cases = nlohmann::json::array();
      for (const auto& s : scores) cases.push_back({{"case", s.key}, {"dice", channels(s.dice)}, {"hd95", channels(s.hd95)}});
      nlohmann::json j{{"label_map", map.name},
                       {"cases", cases},
                       {"mean", {{"dice", channels({sum[0] / n, sum[1] / n, sum[2] / n})}, {"hd95", channels({sum[3] / n, sum[4] / n, sum[5] / n})}}},
                       {"counts", {{"scored", scores.size()}, {"truth_without_prediction", unpredicted.size()},
                                   {"truth_cases", scores.size() + unpredicted.size()}}},
                       {"truth_without_prediction", unpredicted}};
      io::write_file_atomic(staging.output_file(*json_out), j.dump(2) + "\n");
    }
    staging.upload();
    fmt::print("empty regions scored as BraTS does: both empty -> Dice 1, HD95 0; one empty -> Dice 0, HD95 {:.2f} mm\n-> {}\n",
               infer::kEmptyHausdorff, csv_url);
  });
}

void add_plot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plot", "Loss, learning-rate and validation Dice curves of a training run as a PNG");
  auto run = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  cmd->add_option("run", *run, "Run folder (or its metrics.jsonl)")->required();
  cmd->add_option("--out", *out, "PNG file, named .png (default: RUN/curves.png)");
  cmd->callback([=] {
    fs::path m = fs::is_directory(*run) ? fs::path(*run) / "metrics.jsonl" : fs::path(*run);
    fs::path png = out->empty() ? m.parent_path() / "curves.png" : fs::path(*out);
    if (!io::has_suffix(png.string(), ".png")) throw UsageError(fmt::format("--out {}: plot writes PNG only; name the file .png", png.string()));
    const auto panels = train::plot_metrics(m, png);
    fmt::print("{}: {}\n", png.string(), fmt::join(panels, ", "));
  });
}

}  // namespace segscale::cli
