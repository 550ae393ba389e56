#include "transforms/label_map_choice.h"

#include <fmt/format.h>

#include <algorithm>

#include "data/label_map.h"
#include "util/error.h"

namespace segscale::transforms {

std::string LabelMapChoice::describe() const {
  return fmt::format("label map {} ({}): {}", name, data::label_map_preset(name).describe(), reason);
}

LabelMapChoice choose_label_map(const LabelMapSources& s) {
  const std::string data_what = s.data_reason.empty() ? s.data_where : fmt::format("{}: {}", s.data_where, s.data_reason);
  if (!s.flag.empty()) {
    data::label_map_preset(s.flag);  // an unknown name is a usage error naming the presets
    if (!s.data.empty() && s.data != s.flag)
      return {s.flag, fmt::format("--label-map {}, although the data is numbered as {} ({})", s.flag, s.data, data_what)};
    return {s.flag, "--label-map " + s.flag};
  }
  if (s.pipeline && s.pipeline->label_map_from_file) {
    const std::string& file_map = s.pipeline->label_map;
    if (std::find(s.data_also.begin(), s.data_also.end(), file_map) != s.data_also.end())
      return {file_map, fmt::format("from the pipeline file {} (the data allows it; read by default as {})", s.pipeline_where, s.data)};
    if (!s.data.empty() && s.data != file_map)
      throw Error(fmt::format("{}: \"label_map\" is {} ({}) but the data is numbered as {} ({}; {}): remove \"label_map\" from the "
                              "file to follow the data, or pass --label-map {} to use {} on purpose",
                              s.pipeline_where, file_map, data::label_map_preset(file_map).describe(), s.data,
                              data::label_map_preset(s.data).describe(), data_what, file_map, file_map));
    return {file_map, "from the pipeline file " + s.pipeline_where};
  }
  if (!s.data.empty()) return {s.data, "from the data (" + data_what + ")"};
  const std::string fallback = s.pipeline ? s.pipeline->label_map : std::string("blog");
  return {fallback, "the chain's default (the data shows no numbering: no dataset.json, no BraTS file names)"};
}

}  // namespace segscale::transforms
