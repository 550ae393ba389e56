#include "prep/prep.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <chrono>
#include <mutex>

#include "data/catalog.h"
#include "io/json_file.h"
#include "prep/nnunet_preprocess.h"
#include "store/nnunet_sample.h"
#include "transforms/label_map_choice.h"
#include "io/nifti_image.h"
#include "io/npy.h"
#include "segscale/version.h"
#include "storage/storage.h"
#include "store/shard_writer.h"
#include "store/store.h"
#include "transforms/intensity.h"
#include "transforms/load.h"
#include "transforms/pipeline.h"
#include "transforms/pipeline_presets.h"
#include "transforms/spacing.h"
#include "transforms/spatial.h"
#include "util/error.h"
#include "util/fault.h"
#include "util/half.h"
#include "util/parallel.h"
#include "util/progress.h"
#include "util/stop_signal.h"

namespace segscale::prep {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace segscale::transforms;

namespace {

// Shape of one stored sample, from the first case's header and the pipeline's geometry (no voxel is read).
std::uint64_t estimate_sample_bytes(const Pipeline& p, const data::Case& c, int image_bytes, int channels) {
  const Shape3 size = transforms::output_size(p, c.images.front());
  const std::uint64_t voxels = static_cast<std::uint64_t>(size[0] * size[1] * size[2]);
  return voxels * static_cast<std::uint64_t>(channels * image_bytes + 3);
}

io::Bytes encode_image(const Volume& v, bool half) {
  const std::vector<std::int64_t> shape{v.channels, v.size[0], v.size[1], v.size[2]};
  if (!half) return io::encode_npy("<f4", shape, {reinterpret_cast<const std::uint8_t*>(v.data.data()), v.data.size() * 4});
  std::vector<std::uint16_t> h(v.data.size());
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = float_to_half(v.data[i]);
  return io::encode_npy("<f2", shape, {reinterpret_cast<const std::uint8_t*>(h.data()), h.size() * 2});
}

io::Bytes encode_label(const LabelVolume& l, const data::LabelMap& map) {
  const LabelVolume ch = label_channels_u8(l, map);
  return io::encode_npy("|u1", {3, l.size[0], l.size[1], l.size[2]}, {ch.data.data(), ch.data.size()});
}

json affine_json(const Affine& a) {
  json rows = json::array();
  for (auto& r : a.m) rows.push_back(r);
  return rows;
}

// The first file of case `c` that is not there ("modality file P does not exist"), or empty. The catalog is
// opened with allow_missing_files, so a case lacking a file reaches prep like any other bad case.
std::string missing_file(const data::Case& c, data::Layout layout) {
  (void)layout;
  const char* what = c.images.size() > 1 ? "modality" : "image";  // one file per modality, or one 4-D image
  for (const auto& p : c.images)
    if (!fs::is_regular_file(p)) return fmt::format("{} file {} does not exist", what, p.string());
  if (!c.label.empty() && !fs::is_regular_file(c.label)) return fmt::format("label file {} does not exist", c.label.string());
  return {};
}

constexpr const char* kSkipBadHint = "--skip-bad would record it in the manifest and go on";

// Thrown between cases once SIGINT/SIGTERM arrived: the shard being written is dropped (its temporary file
// removed by ~ShardWriter), the finished ones stay.
void throw_if_stopped() {
  if (int sig = stop_requested())
    throw Stopped(fmt::format("prep interrupted by {}; finished shards are kept: rerun the same command to continue",
                              sig == 2 ? "SIGINT (Ctrl-C)" : sig == 15 ? "SIGTERM" : fmt::format("signal {}", sig)));
}

// A case through nnU-Net's DefaultPreprocessor, as the store keeps it (store/nnunet_sample.h).
void add_nnunet_sample(store::ShardWriter& w, const data::Case& c, const NnunetPreprocessing& p) {
  NnunetCase pc = nnunet_preprocess(read_case_arrays(c, p.normalization_schemes.size()), p);
  store::NnunetSampleMeta m;
  m.channels = static_cast<int>(p.normalization_schemes.size());
  m.shape = pc.shape;
  for (const auto& rows : pc.class_locations) {
    auto& out = m.class_locations.emplace_back();
    for (const auto& r : rows) out.push_back({r[1], r[2], r[3]});
  }
  const auto& b = pc.bbox_used_for_cropping;
  m.properties = {{"spacing", pc.spacing},
                  {"shape_before_cropping", pc.shape_before_cropping},
                  {"bbox_used_for_cropping", {{b.lo[0], b.hi[0]}, {b.lo[1], b.hi[1]}, {b.lo[2], b.hi[2]}}},
                  {"shape_after_cropping_and_before_resampling", pc.shape_after_cropping_and_before_resampling}};
  const std::string js = store::nnunet_sample_json(c.key, m).dump();
  const std::vector<std::int64_t> shape{m.channels, m.shape[0], m.shape[1], m.shape[2]};
  const io::Bytes img = io::encode_npy("<f4", shape, {reinterpret_cast<const std::uint8_t*>(pc.data.data()), pc.data.size() * 4});
  const io::Bytes lab = io::encode_npy("<i2", {1, m.shape[0], m.shape[1], m.shape[2]},
                                       {reinterpret_cast<const std::uint8_t*>(pc.seg.data()), pc.seg.size() * 2});
  w.add(c.key, c.key, 0, {{"json", {reinterpret_cast<const std::uint8_t*>(js.data()), js.size()}}, {"image.npy", img}, {"label.npy", lab}});
}

struct Job {
  const PrepOptions& o;
  const NnunetPreprocessing* nnunet;  // set: nnU-Net's preprocessing instead of the chain
  const Pipeline& pipe;
  const data::LabelMap& map;
  const data::Catalog& cat;
  int resample_threads;
  Progress& progress;
  std::atomic<std::uint64_t>& samples;
  std::atomic<std::uint64_t>& bytes;
  std::mutex& log_mu;

  void add_sample(store::ShardWriter& w, const std::string& key, const std::string& case_key, int copy, const Sample& s) {
    json meta{{"case", case_key},
              {"copy", copy},
              {"image_shape", {s.image.channels, s.image.size[0], s.image.size[1], s.image.size[2]}},
              {"image_dtype", o.image_dtype},
              {"label_shape", {3, s.label->size[0], s.label->size[1], s.label->size[2]}},
              {"label_channels", {"TC", "WT", "ET"}},
              {"label_map", map.name},
              {"affine", affine_json(s.image.affine)},
              {"draws", s.draws}};
    const std::string js = meta.dump();
    io::Bytes img = encode_image(s.image, o.image_dtype == "float16");
    io::Bytes lab = encode_label(*s.label, map);
    w.add(key, case_key, copy,
          {{"json", {reinterpret_cast<const std::uint8_t*>(js.data()), js.size()}}, {"image.npy", img}, {"label.npy", lab}});
    samples += 1;
    bytes += js.size() + img.size() + lab.size();
  }

  void one_case(store::ShardWriter& w, const data::Case& c) {
    if (std::string missing = missing_file(c, cat.layout); !missing.empty()) throw Error(missing);
    if (nnunet) {
      if (c.label.empty()) throw Error("no label file");
      add_nnunet_sample(w, c, *nnunet);
      samples += 1;
      return;
    }
    Sample loaded;
    loaded.image = load_image(c.images);
    loaded.label = load_label(c.label, map);
    Sample cached = run_cached_stage(pipe, std::move(loaded), resample_threads);
    if (o.cache) {
      add_sample(w, c.key, c.key, 0, cached);
      return;
    }
    for (int copy = 0; copy < o.copies; ++copy) {
      throw_if_stopped();
      SampleRng rng(o.seed, c.key, static_cast<std::uint64_t>(copy));
      add_sample(w, fmt::format("{}_{:04d}", c.key, copy), c.key, copy, run_random_stage(pipe, cached, rng));
    }
  }

  void shard(std::uint32_t index, const std::vector<std::string>& keys) {
    store::ShardWriter w(o.out, index);
    for (const auto& key : keys) {
      fault_point("prep.case_until_stop");
      throw_if_stopped();
      const data::Case* c = cat.find(key);
      const auto mark = w.mark();
      try {
        if (!c) throw Error("not in the dataset any more (dataset changed since the store was started?)");
        one_case(w, *c);
      } catch (const Stopped&) {
        throw;
      } catch (const Error& e) {
        std::string reason = e.what();
        if (!o.skip_bad) throw Error(fmt::format("case {}: {} ({})", key, reason, kSkipBadHint));
        w.rollback(mark);
        w.skip(key, reason);
        std::lock_guard<std::mutex> lock(log_mu);
        fmt::print(stderr, "\nsegscale prep: skipping case {}: {}\n", key, reason);
      }
      progress.advance(1, 0);
    }
    w.commit();
  }
};

// A dataset under s3:// is copied once into a local cache folder ($TMPDIR/segscale-s3-data/BUCKET/PREFIX;
// files already there with the same size are kept), because NIfTI reading needs whole files anyway.
fs::path local_copy_of_dataset(const std::string& url) {
  auto from = storage::open_storage(url);
  const fs::path dir = storage::temp_root() / "segscale-s3-data" / storage::url_as_relative_path(url);
  storage::mirror_to_folder(*from, dir);
  return dir;
}

}  // namespace

PrepResult run_prep(const PrepOptions& o) {
  const bool nn = !o.plans.empty();
  if (nn && (o.cache || o.copies > 0 || !o.pipeline.empty() || !o.label_map.empty() || o.image_dtype != "float32"))
    throw UsageError("--plans stores nnU-Net's preprocessed cases (float32 images, the dataset's own labels): --cache, --copies, --pipeline, "
                     "--label-map and --dtype do not apply");
  if (!nn && o.cache == (o.copies > 0)) throw UsageError("choose one mode: --cache, --copies N (N >= 1), or --plans P (nnU-Net's preprocessing)");
  if (o.image_dtype != "float32" && o.image_dtype != "float16") throw UsageError("--dtype must be float16 or float32");
  auto t0 = std::chrono::steady_clock::now();
  const StopSignalScope stop_scope;  // Ctrl-C / SIGTERM: stop between cases, keep finished shards, say so
  data::CatalogOptions catalog_options;
  catalog_options.allow_missing_files = true;  // a case lacking a file is a bad case like any other (below)
  catalog_options.any_labels = nn;             // nnU-Net's preprocessing keeps whatever labels the dataset has
  data::Catalog cat =
      data::open_catalog(storage::is_url(o.data.string()) ? local_copy_of_dataset(o.data.string()) : o.data, catalog_options);
  Pipeline pipe = nn ? Pipeline{} : transforms::pipeline_from_arg(o.pipeline);  // a preset name or a JSON file
  if (pipe.samples_per_copy() > 1)
    throw UsageError(fmt::format("--pipeline: rand_crop_by_pos_neg_label num_samples {}: prep and the loaders take num_samples 1 "
                                 "(only `segscale apply` writes several samples per copy)",
                                 pipe.samples_per_copy()));
  std::optional<NnunetPreprocessing> nnunet;
  json nnunet_settings;
  if (nn) {
    fs::path dj = o.dataset_json;
    if (dj.empty()) dj = fs::exists(o.plans.parent_path() / "dataset.json") ? o.plans.parent_path() / "dataset.json" : o.data / "dataset.json";
    if (!fs::exists(dj)) throw UsageError(fmt::format("--plans {}: no dataset.json beside it or in {}; name it with --dataset-json", o.plans.string(), o.data.string()));
    if (!fs::exists(o.plans)) throw UsageError(fmt::format("--plans {}: no such file", o.plans.string()));
    const json plans = io::read_json_file(o.plans);
    const nlohmann::ordered_json dataset_json = io::read_ordered_json_file(dj);
    nnunet = NnunetPreprocessing::from_plans(plans, o.configuration, dataset_json, o.plans.string());
    // dataset.json as text: its key order carries the regions' order (nnU-Net's label manager reads it so).
    nnunet_settings = {{"plans", plans}, {"configuration", o.configuration}, {"foreground", nnunet->foreground}, {"regions", nnunet->regions},
                       {"dataset_json", dataset_json.dump(1)}};
  }
  const transforms::LabelMapChoice label_choice =
      nn ? transforms::LabelMapChoice{"", ""}
         : transforms::choose_label_map({o.label_map, &pipe, o.pipeline, cat.label_preset, cat.label_preset_reason, o.data.string(), cat.label_preset_also});
  if (!nn) {
    pipe.label_map = label_choice.name;
    pipe.label_map_from_file = true;  // the store records the map it was prepared with
    fmt::print("segscale prep: {}\n", label_choice.describe());  // always: the numbering decides what ET means
  } else {
    fmt::print("segscale prep: nnU-Net's preprocessing, {} of {} (the dataset's own labels)\n", o.configuration, o.plans.string());
  }
  const data::LabelMap& map = data::label_map_preset(nn ? std::string("blog") : pipe.label_map);
  // The store keeps the whole pipeline in its settings (the loader runs the random stage of a --cache store);
  // the geometry estimate only follows the stage that is stored.
  Pipeline stored_stage = pipe;
  if (o.cache) stored_stage.steps.resize(pipe.cached_prefix());

  std::vector<std::string> keys;
  for (const auto& c : cat.training) keys.push_back(c.key);
  std::sort(keys.begin(), keys.end());
  if (keys.empty()) throw error_at(o.data.string(), "no labelled (training) cases to preprocess");
  // Without --skip-bad, a missing file stops prep before any work, as a catalog that lists it would.
  const data::Case* first = nullptr;  // the first complete case: the shard size is estimated from its header
  for (const auto& k : keys) {
    const std::string missing = missing_file(*cat.find(k), cat.layout);
    if (!missing.empty() && !o.skip_bad) throw Error(fmt::format("case {}: {} ({})", k, missing, kSkipBadHint));
    if (missing.empty() && !first) first = cat.find(k);
  }
  if (!first) throw error_at(o.data.string(), "every case lacks a file; nothing to preprocess");
  const int channels = static_cast<int>(cat.modalities.empty() ? first->images.size() : cat.modalities.size());
  const std::uint64_t per_case =
      estimate_sample_bytes(stored_stage, *first, o.image_dtype == "float16" ? 2 : 4, channels) * static_cast<std::uint64_t>(o.cache || nn ? 1 : o.copies);
  const std::uint32_t cases_per_shard = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, o.shard_bytes / std::max<std::uint64_t>(per_case, 1)));

  json settings;
  settings["format_version"] = store::kFormatVersion;
  settings["mode"] = nn ? store::kNnunetMode : o.cache ? "cache" : "copies";
  settings["copies"] = o.cache || nn ? 1 : o.copies;
  settings["seed"] = o.seed;
  settings["rng"] = "sample";
  if (nn) {
    settings["nnunet"] = nnunet_settings;
    settings["stored_stage"] = "nnU-Net's preprocessing (DefaultPreprocessor); the loader samples and augments as nnU-Net";
    settings["label_encoding"] = "int16 nnU-Net segmentation, -1 outside the nonzero crop";
  } else {
    settings["pipeline"] = pipe.to_json();
    settings["stored_stage"] = o.cache ? "cached (deterministic steps only; the loader runs the rest)" : "final";
    settings["label_encoding"] = "uint8 0/1 channels TC, WT, ET";
  }
  settings["image_dtype"] = o.image_dtype;
  settings["dataset"] = {{"layout", data::layout_name(cat.layout)}, {"modalities", cat.modalities}};
  settings["cases"] = keys;
  settings["cases_per_shard"] = cases_per_shard;
  storage::open_storage(o.out.string())->make_root();
  store::write_or_check_settings(o.out, settings);
  store::Settings s = store::read_settings(o.out);

  PrepResult r;
  r.shards_total = static_cast<int>(s.shard_count());
  std::vector<std::uint32_t> todo;
  std::uint64_t todo_cases = 0;
  const auto missing = store::missing_shards(o.out, s);  // one listing, not a lookup per shard
  for (std::uint32_t sh = 0; sh < s.shard_count(); ++sh) {
    if (share_of(store::shard_file(sh), o.share.count) != o.share.index) continue;
    ++r.shards_in_share;
    if (!std::binary_search(missing.begin(), missing.end(), sh)) {
      // A committed shard counts as done only if verify would find nothing wrong with it, so rerunning the same
      // prep repairs a damaged store. Affordable: this reads each of the share's shards once (sequential reads and
      // CRC-32C at GB/s, one shard of at most --shard-size in memory at a time), a small fraction of what making
      // it cost (decoding, resampling, augmenting, encoding).
      const auto problems = store::shard_problems(o.out, sh);
      if (problems.empty()) {
        ++r.shards_already_done;
        continue;
      }
      fmt::print(stderr, "segscale prep: redoing {}: {}\n", store::shard_file(sh), problems.front());
      storage::open_storage(o.out.string())->remove(store::sidecar_file(sh));  // uncommitted until rewritten
      ++r.shards_repaired;
    }
    todo.push_back(sh);
    todo_cases += s.cases_of(sh).size();
  }
  const int workers = resolve_threads(o.workers);
  const int shard_threads = std::max(1, std::min<int>(workers, static_cast<int>(todo.size())));
  std::atomic<std::uint64_t> samples{0}, bytes{0};
  std::mutex log_mu;
  Progress progress("prep", todo_cases, "cases", o.quiet);
  Job job{o, nnunet ? &*nnunet : nullptr, pipe, map, cat, std::max(1, workers / shard_threads), progress, samples, bytes, log_mu};
  try {
    parallel_for(todo.size(), shard_threads, [&](std::size_t i) { job.shard(todo[i], s.cases_of(todo[i])); });
  } catch (const Stopped&) {
    if (!o.quiet) progress.finish();  // ends the bar's line before the CLI's one-line message
    throw;
  }
  progress.finish();
  r.shards_written = static_cast<int>(todo.size());
  r.samples = samples;
  r.bytes = bytes;
  r.cases = todo_cases;
  if (store::missing_shards(o.out, s).empty()) {
    r.manifest = store::finalize_store(o.out);
    r.finalized = true;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace segscale::prep
