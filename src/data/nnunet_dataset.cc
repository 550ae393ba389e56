#include "data/nnunet_dataset.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "data/label_map.h"
#include "io/file.h"
#include "util/error.h"

namespace segscale::data {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The label values of a dataset.json "labels" entry: an int, or a list of ints (a region).
std::vector<int> values_of(const json& v, const std::string& where, const std::string& name) {
  std::vector<int> out;
  if (v.is_number_integer()) out.push_back(v.get<int>());
  else if (v.is_array())
    for (const auto& x : v) {
      if (!x.is_number_integer()) throw error_at(where, fmt::format("labels: \"{}\" must be an integer or a list of integers", name));
      out.push_back(x.get<int>());
    }
  else
    throw error_at(where, fmt::format("labels: \"{}\" must be an integer or a list of integers", name));
  std::sort(out.begin(), out.end());
  return out;
}

// Which BraTS part a label name means, by the words nnU-Net's and BraTS's own conversions use.
enum class Part { kNone, kWhole, kCore, kEnhancing, kEdema, kNecrotic };
Part part_of(const std::string& name) {
  const std::string n = lower(name);
  auto has = [&](const char* w) { return n.find(w) != std::string::npos; };
  if (has("whole")) return Part::kWhole;
  if (has("core") && !has("non")) return Part::kCore;
  if (has("non-enhancing") || has("non enhancing") || has("necro") || n == "ncr" || n == "net") return Part::kNecrotic;
  if (has("enhancing") || n == "et") return Part::kEnhancing;
  if (has("edema") || has("oedema") || n == "ed") return Part::kEdema;
  return Part::kNone;
}

// TC, WT, ET from the labels: regions by name, or plain labels (TC = necrotic + enhancing, WT = all three).
struct Channels {
  std::array<std::vector<int>, 3> tc_wt_et;
  std::string how;
};
Channels brats_channels(const json& labels, const std::string& where) {
  if (!labels.is_object()) throw error_at(where, "missing \"labels\" (name -> value or list of values)");
  std::map<Part, std::vector<int>> found;
  bool regions = false;
  std::vector<std::string> names;
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    const std::vector<int> v = values_of(it.value(), where, it.key());
    if (v == std::vector<int>{0}) continue;  // background
    names.push_back(it.key());
    regions |= it.value().is_array() && v.size() > 1;
    if (const Part p = part_of(it.key()); p != Part::kNone) found[p] = v;
  }
  const auto refuse = [&] {
    return error_at(where, fmt::format("labels {} do not name BraTS's tumour regions (whole tumor, tumor core, enhancing tumor; or edema, "
                                       "necrotic / non-enhancing, enhancing): segscale trains TC, WT and ET",
                                       fmt::join(names, ", ")));
  };
  Channels c;
  if (found.count(Part::kWhole) && found.count(Part::kCore) && found.count(Part::kEnhancing)) {
    c.tc_wt_et = {found[Part::kCore], found[Part::kWhole], found[Part::kEnhancing]};
    c.how = regions ? "nnU-Net regions" : "labels";
  } else if (found.count(Part::kEdema) && found.count(Part::kNecrotic) && found.count(Part::kEnhancing) && !regions) {
    std::vector<int> tc = found[Part::kNecrotic], wt = found[Part::kEdema];
    tc.insert(tc.end(), found[Part::kEnhancing].begin(), found[Part::kEnhancing].end());
    wt.insert(wt.end(), tc.begin(), tc.end());
    std::sort(tc.begin(), tc.end());
    std::sort(wt.begin(), wt.end());
    c.tc_wt_et = {tc, wt, found[Part::kEnhancing]};
    c.how = "labels";
  } else {
    throw refuse();
  }
  return c;
}

// The preset whose channels are exactly these (blog never: its ET is MSD's non-enhancing label by mistake).
std::string preset_for(const Channels& c, const std::string& where) {
  for (const auto& name : label_map_preset_names()) {
    if (name == "blog") continue;
    const LabelMap& m = label_map_preset(name);
    bool same = true;
    for (int k = 0; k < 3; ++k) {
      std::vector<int> v = m.channels[static_cast<std::size_t>(k)];
      std::sort(v.begin(), v.end());
      same = same && v == c.tc_wt_et[static_cast<std::size_t>(k)];
    }
    if (same) return name;
  }
  throw error_at(where, fmt::format("labels give TC={{{}}} WT={{{}}} ET={{{}}}, which no label-map preset has (msd, brats21, brats23)",
                                    fmt::join(c.tc_wt_et[0], ","), fmt::join(c.tc_wt_et[1], ","), fmt::join(c.tc_wt_et[2], ",")));
}

// imagesXx/<key>_0000<ending> ... one path per channel.
std::vector<fs::path> channel_files(const fs::path& dir, const std::string& key, std::size_t channels, const std::string& ending) {
  std::vector<fs::path> out;
  for (std::size_t i = 0; i < channels; ++i) out.push_back(dir / fmt::format("{}_{:04d}{}", key, i, ending));
  return out;
}

}  // namespace

bool is_nnunet_dataset_json(const json& j) { return j.is_object() && j.contains("channel_names"); }

Catalog open_nnunet(const fs::path& root, const json& j, bool allow_missing, bool any_labels) {
  const std::string where = (root / "dataset.json").string();
  Catalog cat;
  cat.root = root;
  cat.layout = Layout::kNnunet;
  // channel_names: {"0": "T1", "1": "T1ce", ...}, indices 0..C-1.
  if (!j["channel_names"].is_object() || j["channel_names"].empty()) throw error_at(where, "\"channel_names\" must map 0, 1, ... to names");
  std::map<int, std::string> channels;
  for (auto it = j["channel_names"].begin(); it != j["channel_names"].end(); ++it) {
    int idx = -1;
    try {
      std::size_t used = 0;
      idx = std::stoi(it.key(), &used);
      if (used != it.key().size()) idx = -1;
    } catch (const std::exception&) {
    }
    if (idx < 0 || !it.value().is_string()) throw error_at(where, fmt::format("channel_names: \"{}\" is not a channel index with a name", it.key()));
    channels[idx] = it.value().get<std::string>();
  }
  for (int i = 0; i < static_cast<int>(channels.size()); ++i)
    if (!channels.count(i)) throw error_at(where, fmt::format("channel_names: channel {} is missing (indices must be 0..{})", i, channels.size() - 1));
  for (const auto& [i, name] : channels) cat.modalities.push_back(name);
  const std::string ending = j.value("file_ending", std::string());
  if (ending.empty()) throw error_at(where, "missing \"file_ending\" (e.g. \".nii.gz\")");
  if (ending != ".nii.gz" && ending != ".nii")
    throw error_at(where, fmt::format("file_ending \"{}\": segscale reads NIfTI (.nii.gz, .nii)", ending));

  try {
    const Channels brats = brats_channels(j.value("labels", json()), where);
    cat.label_preset = preset_for(brats, where);
    cat.label_preset_reason = fmt::format("nnU-Net dataset.json {} (TC={{{}}} WT={{{}}} ET={{{}}})", brats.how, fmt::join(brats.tc_wt_et[0], ","),
                                          fmt::join(brats.tc_wt_et[1], ","), fmt::join(brats.tc_wt_et[2], ","));
  } catch (const Error&) {
    if (!any_labels) throw;
    if (!j.contains("labels") || !j["labels"].is_object() || j["labels"].empty())
      throw error_at(where, "missing \"labels\" (name -> value or list of values)");
    cat.label_preset_reason = "nnU-Net dataset.json labels that are not BraTS's regions";  // no preset: planning needs none
  }

  // Training cases: every labelsTr/<key><ending>, sorted (nnU-Net's order).
  std::vector<std::string> keys;
  if (fs::is_directory(root / "labelsTr"))
    for (const auto& e : fs::directory_iterator(root / "labelsTr")) {
      const std::string n = e.path().filename().string();
      if (e.is_regular_file() && n[0] != '.' && io::has_suffix(n, ending)) keys.push_back(n.substr(0, n.size() - ending.size()));
    }
  std::sort(keys.begin(), keys.end());
  if (j.contains("numTraining") && j["numTraining"].is_number_integer() && j["numTraining"].get<std::size_t>() != keys.size())
    throw error_at(where, fmt::format("numTraining is {} but labelsTr holds {} label files", j["numTraining"].get<std::size_t>(), keys.size()));
  for (const auto& key : keys) {
    Case c;
    c.key = key;
    c.images = channel_files(root / "imagesTr", key, channels.size(), ending);
    c.label = root / "labelsTr" / (key + ending);
    if (!allow_missing)
      for (const auto& p : c.images)
        if (!fs::is_regular_file(p)) throw Error(fmt::format("case {}: channel file {} does not exist", key, p.string()));
    cat.training.push_back(std::move(c));
  }
  // Test cases: imagesTs/<key>_0000<ending>.
  std::set<std::string> test_keys;
  const std::string first = "_0000" + ending;
  if (fs::is_directory(root / "imagesTs"))
    for (const auto& e : fs::directory_iterator(root / "imagesTs")) {
      const std::string n = e.path().filename().string();
      if (e.is_regular_file() && io::has_suffix(n, first)) test_keys.insert(n.substr(0, n.size() - first.size()));
    }
  for (const auto& key : test_keys) {
    Case c;
    c.key = key;
    c.images = channel_files(root / "imagesTs", key, channels.size(), ending);
    if (!allow_missing)
      for (const auto& p : c.images)
        if (!fs::is_regular_file(p)) throw Error(fmt::format("case {}: channel file {} does not exist", key, p.string()));
    cat.test.push_back(std::move(c));
  }
  return cat;
}

}  // namespace segscale::data
