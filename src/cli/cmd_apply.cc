// segscale apply: the transform chain on one case, written as .npy files plus meta.json.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/catalog.h"
#include "io/file.h"
#include "io/json_file.h"
#include "io/npy.h"
#include "prep/nnunet_preprocess.h"
#include "transforms/intensity.h"
#include "transforms/load.h"
#include "transforms/pipeline.h"
#include "transforms/label_map_choice.h"
#include "transforms/pipeline_presets.h"
#include "util/error.h"
#include "util/plural.h"

namespace segscale::cli {
namespace fs = std::filesystem;
using nlohmann::ordered_json;
using namespace segscale::transforms;

namespace {

struct ApplyOptions {
  std::vector<std::string> images;
  std::string label, pipeline, rng = "sample", label_map, out, key;
  std::string plans, configuration = "3d_fullres", dataset_json;
  std::uint64_t seed = 0;
  int copies = 1, threads = 1;
  bool dump_steps = false;
};

ordered_json affine_json(const Affine& a) {
  ordered_json rows = ordered_json::array();
  for (auto& r : a.m) rows.push_back(r);
  return rows;
}

std::vector<std::int64_t> shape_of(const Volume& v) { return {v.channels, v.size[0], v.size[1], v.size[2]}; }

void write_volume(const fs::path& path, const Volume& v) { io::write_npy(path, shape_of(v), v.data); }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <typename T>
void write_array(const fs::path& path, const std::string& descr, const std::vector<std::int64_t>& shape, const std::vector<T>& v) {
  io::write_file_atomic(path, io::encode_npy(descr, shape, {reinterpret_cast<const std::uint8_t*>(v.data()), v.size() * sizeof(T)}));
}

// --plans: nnU-Net's DefaultPreprocessor on the case, written as nnU-Net keeps a preprocessed case: the data
// (C, a0, a1, a2) float32, the segmentation (1, a0, a1, a2) int16 with -1 outside the nonzero mask, its properties
// and the foreground locations of each class or region.
void run_apply_nnunet(const ApplyOptions& o) {
  if (!o.pipeline.empty() && o.pipeline != "nnunet")
    throw UsageError(fmt::format("--plans runs nnU-Net's preprocessing: --pipeline must be nnunet or left out, not {}", o.pipeline));
  if (o.copies != 1 || !o.label_map.empty())
    throw UsageError("--plans writes nnU-Net's preprocessed case: --copies and --label-map do not apply (nnU-Net keeps the dataset's labels)");
  const fs::path dj = o.dataset_json.empty() ? fs::path(o.plans).parent_path() / "dataset.json" : fs::path(o.dataset_json);
  if (!fs::exists(dj))
    throw UsageError(fmt::format("--plans {}: no dataset.json beside it; name the dataset's with --dataset-json", o.plans));
  const prep::NnunetPreprocessing p = prep::NnunetPreprocessing::from_plans(io::read_json_file(o.plans), o.configuration, io::read_ordered_json_file(dj), o.plans);
  data::Case c;
  c.key = o.key.empty() ? data::case_key_from_files({o.images.begin(), o.images.end()}) : o.key;
  c.images.assign(o.images.begin(), o.images.end());
  c.label = o.label;
  const auto t0 = std::chrono::steady_clock::now();
  prep::CaseArrays arrays = prep::read_case_arrays(c, p.normalization_schemes.size());  // its errors name the file
  prep::NnunetCase pc;
  try {
    pc = prep::nnunet_preprocess(std::move(arrays), p);
  } catch (const Error& e) {
    throw Error(fmt::format("case {} ({}): {}", c.key, o.images.front(), e.what()));
  }
  const double seconds = seconds_since(t0);
  const fs::path out(o.out);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw error_at(out.string(), "cannot create output folder: " + ec.message());
  const std::vector<std::int64_t> shape{pc.shape[0], pc.shape[1], pc.shape[2]};
  io::write_npy(out / "image_0000.npy", {static_cast<std::int64_t>(p.normalization_schemes.size()), shape[0], shape[1], shape[2]}, pc.data);
  ordered_json locations = ordered_json::array();
  if (!pc.seg.empty()) {
    write_array(out / "label_0000.npy", "<i2", {1, shape[0], shape[1], shape[2]}, pc.seg);
    for (std::size_t k = 0; k < pc.class_locations.size(); ++k) {
      std::vector<std::int64_t> flat;
      for (const auto& r : pc.class_locations[k]) flat.insert(flat.end(), r.begin(), r.end());
      const std::string file = fmt::format("class_locations_{}.npy", k);
      write_array(out / file, "<i8", {static_cast<std::int64_t>(pc.class_locations[k].size()), 4}, flat);
      locations.push_back({{"class", p.foreground[k]}, {"file", file}, {"count", pc.class_locations[k].size()}});
    }
  }
  const auto& b = pc.bbox_used_for_cropping;
  ordered_json meta;
  meta["case_key"] = c.key;
  meta["images"] = o.images;
  meta["label"] = o.label;
  meta["pipeline"] = "nnunet";
  meta["plans"] = o.plans;
  meta["configuration"] = o.configuration;
  meta["properties"] = {{"spacing", pc.spacing},
                        {"shape_before_cropping", pc.shape_before_cropping},
                        {"bbox_used_for_cropping", {{b.lo[0], b.hi[0]}, {b.lo[1], b.hi[1]}, {b.lo[2], b.hi[2]}}},
                        {"shape_after_cropping_and_before_resampling", pc.shape_after_cropping_and_before_resampling}};
  meta["class_locations"] = locations;
  meta["seconds"] = seconds;
  io::write_file_atomic(out / "meta.json", meta.dump(2) + "\n");
  fmt::print("{}: nnU-Net's preprocessing ({} of {}) -> {}x{}x{}x{} in {} ({:.3f} s)\n", c.key, o.configuration, o.plans, p.normalization_schemes.size(),
             shape[0], shape[1], shape[2], out.string(), seconds);
}

void run_apply(const ApplyOptions& o) {
  if (!o.plans.empty()) return run_apply_nnunet(o);
  Pipeline pipe = pipeline_from_arg(o.pipeline);
  // As prep does for a dataset: the numbering the label file's data shows (its dataset.json, its BraTS naming).
  const data::Numbering numbering = o.label.empty() ? data::Numbering{} : data::label_preset_for_file(o.label);
  const LabelMapChoice label_choice = choose_label_map({o.label_map, &pipe, o.pipeline, numbering.preset, numbering.reason, o.label, numbering.also});
  pipe.label_map = label_choice.name;
  const data::LabelMap& map = data::label_map_preset(pipe.label_map);
  if (!o.label.empty()) fmt::print("{}\n", label_choice.describe());
  if (o.copies < 1) throw UsageError("--copies must be at least 1");
  std::vector<fs::path> images(o.images.begin(), o.images.end());
  const std::string key = o.key.empty() ? data::case_key_from_files(images) : o.key;
  fs::path out(o.out);

  // Inputs are read and checked before the output folder exists, so a bad case leaves nothing behind.
  auto t0 = std::chrono::steady_clock::now();
  Sample loaded;
  loaded.image = load_image(images);
  if (!o.label.empty()) loaded.label = load_label(o.label, map);
  const double t_load = seconds_since(t0);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw error_at(out.string(), "cannot create output folder: " + ec.message());

  auto dump = [&](const std::string& tag) -> StepObserver {
    if (!o.dump_steps) return {};
    return [&, tag](std::size_t index, const Step& step, const Sample& s) {
      std::string stem = fmt::format("step_{}_{:02d}_{}", tag, index, step_name(step));
      write_volume(out / (stem + "_image.npy"), s.image);
      if (s.label) write_volume(out / (stem + "_label.npy"), label_channels(*s.label, map));
    };
  };
  auto t1 = std::chrono::steady_clock::now();
  Sample cached = run_cached_stage(pipe, std::move(loaded), o.threads, dump("cache"));
  const double t_cached = seconds_since(t1);

  std::unique_ptr<RandomSource> monai;
  if (o.rng == "monai") monai = std::make_unique<MonaiRng>(o.seed, pipe.random_count());
  ordered_json copies = ordered_json::array();
  auto t2 = std::chrono::steady_clock::now();
  const int per_copy = pipe.samples_per_copy();
  for (int c = 0; c < o.copies; ++c) {
    SampleRng sample_rng(o.seed, key, static_cast<std::uint64_t>(c));
    RandomSource& rng = monai ? *monai : static_cast<RandomSource&>(sample_rng);
    // num_samples > 1: copy c yields outputs c * num_samples + i (MONAI's list of dicts, in order).
    SampleStepObserver observe;
    if (o.dump_steps)
      observe = [&](int i, std::size_t index, const Step& step, const Sample& s) { dump(fmt::format("{:04d}", c * per_copy + i))(index, step, s); };
    const std::vector<Sample> samples = run_random_stage_samples(pipe, cached, rng, observe);
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const Sample& s = samples[i];
      const int index = c * per_copy + static_cast<int>(i);
      write_volume(out / fmt::format("image_{:04d}.npy", index), s.image);
      ordered_json entry{{"index", index}, {"copy", c}, {"sample", i}, {"draws", s.draws}, {"image_shape", shape_of(s.image)},
                         {"affine", affine_json(s.image.affine)}};
      if (s.label) {
        Volume lab = label_channels(*s.label, map);
        write_volume(out / fmt::format("label_{:04d}.npy", index), lab);
        entry["label_shape"] = shape_of(lab);
      }
      copies.push_back(entry);
    }
  }
  const double t_random = seconds_since(t2);

  ordered_json meta;
  meta["case_key"] = key;
  meta["images"] = o.images;
  meta["label"] = o.label;
  meta["rng"] = o.rng;
  meta["seed"] = o.seed;
  meta["pipeline"] = pipe.to_json();
  meta["cached"] = {{"image_shape", shape_of(cached.image)}, {"affine", affine_json(cached.image.affine)}};
  meta["copies"] = copies;
  meta["seconds"] = {{"load", t_load}, {"cached_stage", t_cached}, {"random_stage_and_write", t_random}};
  io::write_file_atomic(out / "meta.json", meta.dump(2) + "\n");
  fmt::print("{}: {} of {} -> {} (load {:.3f} s, cached stage {:.3f} s, random stage + write {:.3f} s/copy)\n", key, plural(o.copies, "copy", "copies"),
             fmt::format("{}x{}x{}x{}", cached.image.channels, cached.image.size[0], cached.image.size[1], cached.image.size[2]),
             out.string(), t_load, t_cached, t_random / o.copies);
}

}  // namespace

void add_apply_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("apply", "Run the transform chain on one case and write .npy samples + meta.json");
  cmd->footer(label_map_help());
  auto o = std::make_shared<ApplyOptions>();
  cmd->add_option("--image", o->images, "Image file(s): one 4-D file, or one 3-D file per modality, comma-separated")
      ->required()->delimiter(',');
  cmd->add_option("--label", o->label, "Label map file");
  cmd->add_option("--pipeline", o->pipeline, "Pipeline: a preset (case-study, monai-brats, nnunet) or a JSON file; default: the case study's chain");
  cmd->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  cmd->add_option("--rng", o->rng, "sample: draws keyed by (seed, case, copy); monai: MONAI 1.4.0's draws for one sequential run")
      ->check(CLI::IsMember({"sample", "monai"}))->capture_default_str();
  cmd->add_option("--copies", o->copies, "Random copies of the case (a rand_crop_by_pos_neg_label with num_samples N writes N samples per copy)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--label-map", o->label_map, "Label-map preset (blog, msd, brats21, brats23; see segscale --help); default: the pipeline file's, else the data's "
                  "(its dataset.json or BraTS naming), else blog");
  cmd->add_option("--key", o->key, "Case key for the sample RNG (default: <KEY> of BraTS names <KEY>_flair.nii.gz, else the first image's file name)");
  cmd->add_option("--threads", o->threads, "Threads for resampling (0 = all cores)")->capture_default_str();
  cmd->add_option("--plans", o->plans, "nnU-Net's plans file (segscale plan --out, or nnU-Net's): run nnU-Net's preprocessing on the case instead "
                  "(with --pipeline nnunet or none)");
  cmd->add_option("--configuration", o->configuration, "The plans file's configuration for --plans")->capture_default_str();
  cmd->add_option("--dataset-json", o->dataset_json, "dataset.json for --plans (default: the one beside the plans file)");
  cmd->add_flag("--dump-steps", o->dump_steps, "Also write the volume after every step (step_*.npy), for checking against MONAI");
  cmd->add_option("--out", o->out, "Output folder")->required();
  cmd->callback([o] { run_apply(*o); });
}

}  // namespace segscale::cli
