#pragma once
// Label-map presets: which label values make up the three BraTS channels TC, WT and ET.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace segscale::data {

struct LabelMap {
  std::string name;
  std::array<std::vector<int>, 3> channels;  // label values in TC, WT, ET (in that channel order)

  // 0 plus every value used by a channel: the values a label file may contain.
  std::vector<int> known_values() const;
  bool is_known(int value) const;
  // The label value of each nested region, for turning TC/WT/ET predictions back into a label map:
  // {WT minus TC (edema), TC minus ET (core), ET}. E.g. brats21 -> {2, 1, 4}, msd -> {1, 2, 3}, blog -> {1, 3, 2}.
  std::array<int, 3> region_values() const;
  // e.g. "TC={2,3} WT={1,2,3} ET={2}"
  std::string describe() const;
};

// The presets:
//   blog    MSD numbering as the case study and MONAI's tutorials use it: TC={2,3} WT={1,2,3} ET={2}
//   msd     what the MSD dataset.json means:                              TC={2,3} WT={1,2,3} ET={3}
//   brats21 BraTS 2018-2021 numbering (1 NCR, 2 ED, 4 ET):                TC={1,4} WT={1,2,4} ET={4}
//   brats23 BraTS 2023 GLI numbering (1 NCR, 2 ED, 3 ET):                 TC={1,3} WT={1,2,3} ET={3}
// Throws UsageError naming the presets for an unknown name.
const LabelMap& label_map_preset(const std::string& name);
std::vector<std::string> label_map_preset_names();

// Counts each label value in `values` (n voxels) and checks that all are whole numbers known to `map`.
// Throws Error("<where>: label value V at voxel index I is not in preset P (allowed: ...)") on the first
// offending voxel (non-integers included).
std::map<int, std::uint64_t> count_and_check_labels(const float* values, std::size_t n, const LabelMap& map,
                                                    const std::string& where);

}  // namespace segscale::data
