#include "data/catalog.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "data/nnunet_dataset.h"
#include "io/file.h"
#include "io/json_file.h"
#include "util/error.h"

namespace segscale::data {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// BraTS' two file namings: <CASE>_<modality> (2018-2021) and <CASE>-<modality> (2023 GLI), each with its numbering.
struct BratsNaming {
  char sep;
  std::vector<std::string> modalities;  // in channel order
  const char* preset;
  const char* numbering;  // why the preset, for the user
};
const BratsNaming kBratsNamings[] = {
    {'_', {"flair", "t1", "t1ce", "t2"}, "brats21", "BraTS 2021 file names (1 NCR, 2 ED, 4 ET)"},
    {'-', {"t2f", "t1n", "t1c", "t2w"}, "brats23", "BraTS 2023 file names (1 NCR, 2 ED, 3 ET)"},
};

fs::path resolve(const fs::path& root, const std::string& rel) {
  fs::path p(rel);
  return p.is_absolute() ? p : (root / p).lexically_normal();
}

void require_file(const fs::path& p, const std::string& key, const char* what, bool allow_missing) {
  if (!allow_missing && !fs::is_regular_file(p)) throw Error(fmt::format("case {}: {} file {} does not exist", key, what, p.string()));
}

std::vector<fs::path> image_list(const json& v, const fs::path& root, const std::string& where) {
  std::vector<fs::path> out;
  if (v.is_string()) {
    out.push_back(resolve(root, v.get<std::string>()));
  } else if (v.is_array() && !v.empty()) {
    for (const auto& e : v) {
      if (!e.is_string()) throw error_at(where, "an \"image\" list entry is not a string");
      out.push_back(resolve(root, e.get<std::string>()));
    }
  } else {
    throw error_at(where, "\"image\" must be a path or a non-empty list of paths");
  }
  return out;
}

Catalog open_msd(const fs::path& root, bool allow_missing) {
  const fs::path json_path = root / "dataset.json";
  const std::string where = json_path.string();
  const json j = io::read_json_file(json_path);
  if (!j.is_object()) throw error_at(where, "top level must be a JSON object");
  Catalog cat;
  cat.root = root;
  cat.layout = Layout::kMsd;
  if (j.contains("modality")) {
    const auto& m = j["modality"];
    if (!m.is_object()) throw error_at(where, "\"modality\" must be an object {\"0\": name, ...}");
    std::vector<std::pair<int, std::string>> mods;
    for (auto it = m.begin(); it != m.end(); ++it) {
      int idx;
      try {
        idx = std::stoi(it.key());
      } catch (...) {
        throw error_at(where, "\"modality\" key '" + it.key() + "' is not a channel index");
      }
      mods.emplace_back(idx, it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
    }
    std::sort(mods.begin(), mods.end());
    for (auto& [i, name] : mods) cat.modalities.push_back(name);
  }
  // MSD's Task01 numbers 1 oedema, 2 non-enhancing, 3 enhancing; the case study (and MONAI's tutorials) read it
  // through BraTS' ConvertToMultiChannel, which is the blog preset. Said aloud, since ET differs from msd's.
  cat.label_preset = "blog";
  cat.label_preset_reason = "an MSD dataset.json, read as the case study does: ET = label 2; --label-map msd for its own ET = 3";
  cat.label_preset_also = {"msd"};
  if (j.contains("labels") && j["labels"].is_object() && j["labels"].contains("4")) {
    cat.label_preset = "brats21";
    cat.label_preset_reason = "dataset.json labels include 4 (BraTS 2018-2021 numbering)";
    cat.label_preset_also.clear();
  }
  if (j.contains("segscale_label_preset") && j["segscale_label_preset"].is_string()) {
    cat.label_preset = j["segscale_label_preset"];
    cat.label_preset_reason = "dataset.json \"segscale_label_preset\"";
    cat.label_preset_also.clear();
  }
  if (!j.contains("training") || !j["training"].is_array()) throw error_at(where, "missing \"training\" list");

  std::set<std::string> keys;
  auto add_key = [&](const std::string& key) {
    if (!keys.insert(key).second) throw error_at(where, "case " + key + " is listed twice");
  };
  for (const auto& e : j["training"]) {
    if (!e.is_object() || !e.contains("image") || !e.contains("label") || !e["label"].is_string())
      throw error_at(where, "each \"training\" entry needs \"image\" and \"label\": " + e.dump().substr(0, 120));
    Case c;
    c.images = image_list(e["image"], root, where);
    c.key = case_key_from_path(e["label"].get<std::string>());
    for (const char* tail : {"_seg", "-seg"})  // BraTS-named labels: BraTS2021_00006_seg -> BraTS2021_00006
      if (io::has_suffix(c.key, tail)) c.key.resize(c.key.size() - 4);
    c.label = resolve(root, e["label"].get<std::string>());
    add_key(c.key);
    for (const auto& p : c.images) require_file(p, c.key, "image", allow_missing);
    require_file(c.label, c.key, "label", allow_missing);
    cat.training.push_back(std::move(c));
  }
  if (j.contains("test")) {
    if (!j["test"].is_array()) throw error_at(where, "\"test\" must be a list");
    for (const auto& e : j["test"]) {
      Case c;
      const json& img = e.is_object() && e.contains("image") ? e["image"] : e;
      c.images = image_list(img, root, where);
      c.key = case_key_from_path(c.images.front());
      add_key(c.key);
      for (const auto& p : c.images) require_file(p, c.key, "image", allow_missing);
      cat.test.push_back(std::move(c));
    }
  }
  return cat;
}

// Finds CASE<sep><suffix>.nii.gz or .nii inside a case folder.
fs::path find_member(const fs::path& dir, const std::string& key, const std::string& sep, const std::string& suffix) {
  for (const char* ext : {".nii.gz", ".nii"}) {
    fs::path p = dir / (key + sep + suffix + ext);
    if (fs::is_regular_file(p)) return p;
  }
  return {};
}

Catalog open_brats(const fs::path& root, const std::vector<std::string>& wanted, bool allow_missing) {
  Catalog cat;
  cat.root = root;
  cat.layout = Layout::kBrats;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && e.path().filename().string()[0] != '.') dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    const std::string key = dir.filename().string();
    const BratsNaming* naming = nullptr;
    for (const BratsNaming& n : kBratsNamings) {
      const std::string sep(1, n.sep);
      if (!naming && (!find_member(dir, key, sep, "seg").empty() || !find_member(dir, key, sep, n.modalities[0]).empty() ||
                      !find_member(dir, key, sep, wanted.empty() ? n.modalities[1] : wanted[0]).empty()))
        naming = &n;
    }
    if (!naming) continue;  // not a case folder
    const std::string sep(1, naming->sep);
    const std::vector<std::string> mods = wanted.empty() ? naming->modalities : wanted;
    if (cat.label_preset.empty()) {
      cat.label_preset = naming->preset;
      cat.label_preset_reason = naming->numbering;
    }
    if (cat.modalities.empty()) cat.modalities = mods;
    Case c;
    c.key = key;
    for (const auto& m : mods) {
      fs::path p = find_member(dir, key, sep, m);
      if (p.empty() && allow_missing) p = dir / (key + sep + m + ".nii.gz");
      if (p.empty())
        throw Error(fmt::format("case {}: modality file {} does not exist", key, (dir / (key + sep + m + ".nii.gz")).string()));
      c.images.push_back(p);
    }
    c.label = find_member(dir, key, sep, "seg");
    (c.label.empty() ? cat.test : cat.training).push_back(std::move(c));
  }
  return cat;
}

}  // namespace

const char* layout_name(Layout l) { return l == Layout::kMsd ? "msd" : l == Layout::kBrats ? "brats" : "nnunet"; }

std::string case_key_from_path(const fs::path& p) {
  std::string name = p.filename().string();
  for (const char* ext : {".nii.gz", ".nii"})
    if (io::has_suffix(name, ext)) return name.substr(0, name.size() - std::string(ext).size());
  return name;
}

const Case* Catalog::find(const std::string& key) const {
  for (const auto* list : {&training, &test})
    for (const auto& c : *list)
      if (c.key == key) return &c;
  return nullptr;
}

Catalog open_catalog(const fs::path& root, const CatalogOptions& options) {
  if (!fs::exists(root)) throw error_at(root.string(), "dataset folder does not exist");
  if (!fs::is_directory(root)) throw error_at(root.string(), "not a folder (a dataset is a folder with dataset.json or BraTS case folders)");
  Catalog cat;
  const bool has_json = fs::exists(root / "dataset.json");
  // nnU-Net's dataset.json (v2, "channel_names") and MSD's share the file name.
  const bool nnunet_json = has_json && (options.layout == "auto" || options.layout == "nnunet") &&
                           is_nnunet_dataset_json(io::read_json_file(root / "dataset.json"));
  if (nnunet_json) {
    cat = open_nnunet(root, io::read_json_file(root / "dataset.json"), options.allow_missing_files, options.any_labels);
  } else if (options.layout == "nnunet") {
    throw error_at((root / "dataset.json").string(), has_json ? "not an nnU-Net v2 dataset.json (no \"channel_names\")" : "missing");
  } else if (options.layout == "msd" || (options.layout == "auto" && has_json)) {
    cat = open_msd(root, options.allow_missing_files);
  } else if (options.layout == "brats" || options.layout == "auto") {
    cat = open_brats(root, options.modalities, options.allow_missing_files);
  } else {
    throw UsageError("unknown dataset layout '" + options.layout + "' (choose auto, msd, brats or nnunet)");
  }
  if (cat.training.empty() && cat.test.empty())
    throw error_at(root.string(), "no cases found (expected dataset.json, or case folders holding <case>_<modality>.nii.gz files)");
  if (cat.label_preset.empty()) {
    cat.label_preset = "blog";
    cat.label_preset_reason = "no numbering shown; the case study's";
  }
  return cat;
}

}  // namespace segscale::data

namespace segscale::data {

FileNaming brats_naming(const fs::path& file) {
  const std::string stem = case_key_from_path(file);
  for (const BratsNaming& n : kBratsNamings) {
    const std::size_t at = stem.rfind(n.sep);
    if (at == std::string::npos || at == 0) continue;
    const std::string m = stem.substr(at + 1);
    if (m == "seg" || std::find(n.modalities.begin(), n.modalities.end(), m) != n.modalities.end()) return {stem.substr(0, at), m, n.preset};
  }
  return {};
}

std::string case_key_from_files(const std::vector<fs::path>& images) {
  if (images.empty()) return {};
  const FileNaming n = brats_naming(images.front());
  return n.key.empty() ? case_key_from_path(images.front()) : n.key;
}

Numbering label_preset_for_file(const fs::path& file) {
  const fs::path dir = fs::absolute(file).parent_path();
  for (const fs::path& root : {dir, dir.parent_path()}) {
    if (!fs::is_regular_file(root / "dataset.json")) continue;
    try {
      const Catalog cat = open_catalog(root);
      return {cat.label_preset, cat.label_preset_reason, cat.label_preset_also};
    } catch (const Error&) {
      // a dataset.json we cannot use says nothing about this file
    }
  }
  const FileNaming n = brats_naming(file);
  if (n.label_preset.empty()) return {};
  for (const BratsNaming& b : kBratsNamings)
    if (n.label_preset == b.preset) return {b.preset, b.numbering, {}};
  return {};
}

}  // namespace segscale::data
