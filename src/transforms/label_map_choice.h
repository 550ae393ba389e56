#pragma once
// Which label map a command uses, and why. The data's numbering wins unless the user names one: a pipeline
// preset's label map is only a default, a pipeline file that names a map other than the data's is refused
// (training ET on oedema is the silent wrong result this guards against), and --label-map is the user's explicit
// choice, printed beside the data's when they differ. libtorch-free.
#include <string>
#include <vector>

#include "transforms/pipeline.h"

namespace segscale::transforms {

struct LabelMapChoice {
  std::string name;    // a preset name (data::label_map_preset accepts it)
  std::string reason;  // e.g. "from the data (BraTS 2023 file names)", printed after the map
  // "label map brats23 (TC={1,3} WT={1,2,3} ET={3}): from the data (BraTS 2023 file names)"
  std::string describe() const;
};

struct LabelMapSources {
  std::string flag;              // --label-map; empty: not given
  const Pipeline* pipeline = nullptr;  // its label_map counts when it came from a file (label_map_from_file)
  std::string pipeline_where;    // the pipeline file, for the message
  std::string data;              // the numbering the data shows (its dataset.json, its file names); empty: none
  std::string data_reason;       // why the data shows it, e.g. "BraTS 2023 file names"
  std::string data_where;        // the dataset or file, for the message
  std::vector<std::string> data_also;  // other presets the data's label values allow (a file may pick one)
};

// Throws Error naming the pipeline file, the data and both fixes when a file's label map contradicts the data's;
// UsageError for an unknown --label-map.
LabelMapChoice choose_label_map(const LabelMapSources& s);

}  // namespace segscale::transforms
