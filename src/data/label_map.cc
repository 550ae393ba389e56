#include "data/label_map.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace segscale::data {
namespace {

const std::vector<LabelMap>& presets() {
  static const std::vector<LabelMap> kPresets = {
      {"blog", {{{2, 3}, {1, 2, 3}, {2}}}},
      {"msd", {{{2, 3}, {1, 2, 3}, {3}}}},
      {"brats21", {{{1, 4}, {1, 2, 4}, {4}}}},
      {"brats23", {{{1, 3}, {1, 2, 3}, {3}}}},
  };
  return kPresets;
}

}  // namespace

std::vector<int> LabelMap::known_values() const {
  std::vector<int> v{0};
  for (const auto& ch : channels) v.insert(v.end(), ch.begin(), ch.end());
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

bool LabelMap::is_known(int value) const {
  auto k = known_values();
  return std::binary_search(k.begin(), k.end(), value);
}

std::array<int, 3> LabelMap::region_values() const {
  auto only = [](const std::vector<int>& a, const std::vector<int>& minus) {
    for (int v : a)
      if (std::find(minus.begin(), minus.end(), v) == minus.end()) return v;
    return 0;
  };
  return {only(channels[1], channels[0]), only(channels[0], channels[2]), channels[2].empty() ? 0 : channels[2][0]};
}

std::string LabelMap::describe() const {
  return fmt::format("TC={{{}}} WT={{{}}} ET={{{}}}", fmt::join(channels[0], ","), fmt::join(channels[1], ","),
                     fmt::join(channels[2], ","));
}

const LabelMap& label_map_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return p;
  throw UsageError(fmt::format("unknown label-map preset '{}' (choose one of: {})", name, fmt::join(label_map_preset_names(), ", ")));
}

std::vector<std::string> label_map_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

std::map<int, std::uint64_t> count_and_check_labels(const float* values, std::size_t n, const LabelMap& map,
                                                    const std::string& where) {
  // Labels are small integers: count with a direct table, then validate the (few) distinct values.
  std::array<std::uint64_t, 256> table{};
  std::map<int, std::uint64_t> counts;
  for (std::size_t i = 0; i < n; ++i) {
    float v = values[i];
    if (v >= 0 && v < 256 && v == std::floor(v)) {
      ++table[static_cast<int>(v)];
      continue;
    }
    throw error_at(where, fmt::format("label value {} at voxel index {} is not a whole number in 0..255 (preset {} allows {})",
                                      v, i, map.name, fmt::join(map.known_values(), ",")));
  }
  for (int v = 0; v < 256; ++v) {
    if (!table[v]) continue;
    if (!map.is_known(v))
      throw error_at(where, fmt::format("label value {} ({} voxels) is not in preset {} (allowed: {}); wrong --label-map?", v,
                                        table[v], map.name, fmt::join(map.known_values(), ",")));
    counts[v] = table[v];
  }
  return counts;
}

}  // namespace segscale::data
