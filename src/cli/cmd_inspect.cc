// segscale inspect PATH: header facts and value statistics of a NIfTI file, or a dataset summary.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/case_check.h"
#include "data/catalog.h"
#include "io/nifti_image.h"
#include "storage/storage.h"
#include "store/store.h"
#include "util/error.h"
#include "util/plural.h"

namespace segscale::cli {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

ordered_json affine_json(const Affine& a) {
  ordered_json rows = ordered_json::array();
  for (auto& r : a.m) rows.push_back(r);
  return rows;
}

ordered_json inspect_nifti(const fs::path& path) {
  io::NiftiImage img = io::read_nifti(path);
  const io::NiftiHeader& h = img.header;
  auto values = io::to_float32(img);
  double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0;
  std::uint64_t finite = 0, nan = 0, inf = 0;
  for (float v : values) {
    if (std::isnan(v)) { ++nan; continue; }
    if (std::isinf(v)) { ++inf; continue; }
    mn = std::min<double>(mn, v);
    mx = std::max<double>(mx, v);
    sum += v;
    ++finite;
  }
  Affine a = h.best_affine();
  auto zooms = voxel_sizes(a);
  ordered_json j;
  j["file"] = path.string();
  j["format"] = fmt::format("NIfTI-{}{}", h.version, h.pair ? " pair" : "");
  j["byte_order"] = h.big_endian ? "big" : "little";
  j["shape"] = h.shape();
  j["dtype"] = io::dtype_name(h.datatype);
  j["voxel_size"] = zooms;
  j["pixdim"] = std::vector<double>(h.pixdim.begin() + 1, h.pixdim.begin() + 1 + std::min(h.ndim(), 7));
  j["qform_code"] = h.qform_code;
  j["sform_code"] = h.sform_code;
  j["affine_source"] = h.affine_source();
  j["affine"] = affine_json(a);
  j["axcodes"] = axcodes(a);
  auto sc = h.scaling();
  j["scl_slope"] = sc ? sc->first : 1.0;
  j["scl_inter"] = sc ? sc->second : 0.0;
  j["vox_offset"] = h.vox_offset;
  j["min"] = finite ? mn : std::nan("");
  j["max"] = finite ? mx : std::nan("");
  j["mean"] = finite ? sum / static_cast<double>(finite) : std::nan("");
  j["nan_count"] = nan;
  j["inf_count"] = inf;
  j["descrip"] = h.descrip;
  return j;
}

void print_nifti(const ordered_json& j) {
  fmt::print("{}\n", j["file"].get<std::string>());
  fmt::print("  format      {} ({}-endian)\n", j["format"].get<std::string>(), j["byte_order"].get<std::string>());
  fmt::print("  shape       {}   dtype {}\n", fmt::join(j["shape"].get<std::vector<std::int64_t>>(), " x "), j["dtype"].get<std::string>());
  fmt::print("  voxel size  {:.4g} mm\n", fmt::join(j["voxel_size"].get<std::vector<double>>(), " x "));
  fmt::print("  orientation {}   (affine from {}; qform_code {}, sform_code {})\n", j["axcodes"].get<std::string>(),
             j["affine_source"].get<std::string>(), j["qform_code"].get<int>(), j["sform_code"].get<int>());
  for (const auto& row : j["affine"]) {
    auto r = row.get<std::vector<double>>();
    fmt::print("    [{:10.4f} {:10.4f} {:10.4f} {:10.4f}]\n", r[0], r[1], r[2], r[3]);
  }
  fmt::print("  scaling     slope {} inter {}\n", j["scl_slope"].get<double>(), j["scl_inter"].get<double>());
  auto num = [](const ordered_json& v) { return v.is_number() ? fmt::format("{:.6g}", v.get<double>()) : std::string("nan"); };
  fmt::print("  values      min {}  max {}  mean {}\n", num(j["min"]), num(j["max"]), num(j["mean"]));
  if (j["nan_count"].get<std::uint64_t>() || j["inf_count"].get<std::uint64_t>())
    fmt::print("  WARNING     {} NaN and {} Inf voxels (excluded from the statistics)\n", j["nan_count"].get<std::uint64_t>(),
               j["inf_count"].get<std::uint64_t>());
}

ordered_json inspect_dataset(const fs::path& root, const std::string& preset, bool check) {
  data::Catalog cat = data::open_catalog(root);
  const std::string preset_name = preset.empty() ? cat.label_preset : preset;
  const data::LabelMap& map = data::label_map_preset(preset_name);
  ordered_json j;
  j["dataset"] = root.string();
  j["layout"] = data::layout_name(cat.layout);
  j["modalities"] = cat.modalities;
  j["training_cases"] = cat.training.size();
  j["test_cases"] = cat.test.size();
  j["label_map"] = {{"preset", preset_name}, {"channels", map.describe()}};
  if (check) {
    std::map<int, std::uint64_t> totals;
    ordered_json shapes = ordered_json::object();
    for (const auto* list : {&cat.training, &cat.test})
      for (const auto& c : *list) {
        auto r = data::check_case(c, cat, &map);
        shapes[c.key] = r.spatial_shape;
        for (auto [v, n] : r.label_counts) totals[v] += n;
      }
    ordered_json counts = ordered_json::object();
    for (auto [v, n] : totals) counts[std::to_string(v)] = n;
    j["checked"] = true;
    j["label_voxels"] = counts;
    j["shapes"] = shapes;
  }
  return j;
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a NIfTI file's header and values, or summarise a dataset folder or a sample store");
  cmd->footer(label_map_help());
  auto path = std::make_shared<std::string>();
  auto json_out = std::make_shared<bool>(false);
  auto check = std::make_shared<bool>(false);
  auto preset = std::make_shared<std::string>();
  cmd->add_option("path", *path, "NIfTI file (.nii, .nii.gz, .hdr), dataset folder, or sample store (segscale prep's --out)")->required();
  cmd->add_flag("--json", *json_out, "Print one JSON object instead of text");
  cmd->add_flag("--check", *check, "Dataset: read every case and check shapes, affines and label values");
  cmd->add_option("--label-map", *preset, "Dataset: label-map preset for --check (blog, msd, brats21, brats23; default from the dataset)");
  cmd->callback([=] {
    fs::path p(*path);
    const bool remote = storage::is_url(*path);  // s3://: a store (datasets and NIfTI files are read locally)
    if (!remote && !fs::exists(p)) throw error_at(p.string(), "no such file or folder");
    if (remote || (fs::is_directory(p) && fs::exists(p / "manifest.json"))) {
      if (*check || !preset->empty()) throw UsageError("--check and --label-map apply to a dataset folder; for a store, run segscale verify " + *path);
      store::StoreReader r(p);
      const auto& m = r.manifest();
      // Sizes as the files are, not only as the manifest says (a truncated or lost shard shows here).
      std::uint64_t stored = 0;  // the shards' sizes as the storage reports them (files on disk, objects in S3)
      std::vector<std::string> size_problems;
      for (const auto& sh : m.value("shards", nlohmann::json::array())) {
        const std::string name = sh.value("file", "");
        const std::uint64_t want = sh.value("bytes", std::uint64_t{0});
        const auto have = r.storage().size(name);
        if (!have) size_problems.push_back(fmt::format("{} missing", name));
        else if (*have != want) size_problems.push_back(fmt::format("{} is {} bytes, the manifest says {}", name, *have, want));
        if (have) stored += *have;
      }
      if (*json_out) {
        nlohmann::json out = m;
        out["bytes_stored"] = stored;
        out["storage"] = remote ? "s3" : "local";
        out["size_problems"] = size_problems;
        fmt::print("{}\n", out.dump());
      } else {
        const auto& st = m["settings"];
        fmt::print("{}: segscale store (format {}), {} mode{}, {}, {} in {}, {:.1f} MB (manifest)\n", p.string(),
                   m["format_version"].get<int>(), st["mode"].get<std::string>(),
                   st["mode"] == "copies" ? fmt::format(" x{}", st["copies"].get<int>()) : std::string(), plural(m["counts"]["cases"].get<std::int64_t>(), "case"),
                   plural(m["counts"]["samples"].get<std::int64_t>(), "sample"), plural(m["counts"]["shards"].get<std::int64_t>(), "shard"),
                   m["counts"]["bytes"].get<double>() / 1e6);
        fmt::print("  image {}, labels {}, label map {}, seed {}, made by {}\n", st["image_dtype"].get<std::string>(),
                   st["label_encoding"].get<std::string>(), st["pipeline"]["label_map"].get<std::string>(), st["seed"].dump(),
                   m["tool"].get<std::string>());
        if (!m["skipped"].empty()) fmt::print("  skipped cases: {}\n", m["skipped"].dump());
        fmt::print("  {}: {:.1f} MB {}\n", remote ? "objects" : "files", static_cast<double>(stored) / 1e6, remote ? "stored in the bucket" : "on disk");
        for (const auto& q : size_problems) fmt::print("  WARNING     {}: run segscale verify {}, then rerun the same segscale prep command to repair it\n", q, p.string());
      }
      return;
    }
    if (!fs::is_directory(p) && (*check || !preset->empty()))
      throw UsageError("--check and --label-map apply to a dataset folder, not to a single file (" + p.string() + ")");
    ordered_json j = fs::is_directory(p) ? inspect_dataset(p, *preset, *check) : inspect_nifti(p);
    if (*json_out) {
      fmt::print("{}\n", j.dump());
    } else if (fs::is_directory(p)) {
      fmt::print("{}: {} dataset, {} training + {} test cases, modalities {}\n", p.string(), j["layout"].get<std::string>(),
                 j["training_cases"].get<std::size_t>(), j["test_cases"].get<std::size_t>(),
                 fmt::join(j["modalities"].get<std::vector<std::string>>(), ", "));
      fmt::print("  label map {}: {}\n", j["label_map"]["preset"].get<std::string>(), j["label_map"]["channels"].get<std::string>());
      if (*check) fmt::print("  all cases consistent; label voxels {}\n", j["label_voxels"].dump());
    } else {
      print_nifti(j);
    }
  });
}

}  // namespace segscale::cli
