#include "transforms/pipeline_presets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/error.h"

namespace segscale::transforms {
namespace {

using oj = nlohmann::ordered_json;

oj flip(int axis) { return oj{{"type", "rand_flip"}, {"prob", 0.5}, {"spatial_axis", axis}}; }

}  // namespace

std::vector<std::string> pipeline_preset_names() { return {"case-study", "monai-brats", "nnunet"}; }

bool is_pipeline_preset(const std::string& name) {
  for (const auto& n : pipeline_preset_names())
    if (n == name) return true;
  return false;
}

oj pipeline_preset(const std::string& name) {
  if (name == "case-study") return Pipeline::case_study().to_json();
  if (name == "monai-brats") {
    return oj{{"label_map", "blog"},
              {"transforms", oj::array({oj{{"type", "orientation"}, {"axcodes", "RAS"}},
                                        oj{{"type", "spacing"}, {"pixdim", {1.0, 1.0, 1.0}}},
                                        oj{{"type", "rand_spatial_crop"}, {"roi", {224, 224, 144}}},
                                        flip(0), flip(1), flip(2),
                                        oj{{"type", "normalize_intensity"}, {"nonzero", true}, {"channel_wise", true}},
                                        oj{{"type", "rand_scale_intensity"}, {"factors", 0.1}, {"prob", 1.0}},
                                        oj{{"type", "rand_shift_intensity"}, {"offsets", 0.1}, {"prob", 1.0}}})}};
  }
  if (name == "nnunet") {
    return oj{{"label_map", "msd"},
              {"transforms", oj::array({oj{{"type", "orientation"}, {"axcodes", "RAS"}},
                                        oj{{"type", "spacing"}, {"pixdim", {1.0, 1.0, 1.0}}},
                                        oj{{"type", "normalize_intensity"}, {"nonzero", true}, {"channel_wise", true}},
                                        oj{{"type", "rand_crop_by_pos_neg_label"}, {"roi", {128, 128, 128}}, {"pos", 1.0}, {"neg", 2.0},
                                           {"num_samples", 1}, {"use_image", false}, {"image_threshold", 0.0}, {"allow_smaller", true}},
                                        flip(0), flip(1), flip(2)})}};
  }
  throw UsageError(fmt::format("unknown pipeline preset '{}' (presets: {}; or give a JSON file)", name, fmt::join(pipeline_preset_names(), ", ")));
}

std::string pipeline_preset_val_mode(const std::string& name) {
  pipeline_preset(name);  // throws for an unknown name
  return name == "case-study" ? "crop" : "full";
}

Pipeline pipeline_from_arg(const std::string& arg) {
  if (arg.empty()) return Pipeline::case_study();
  for (const auto& n : pipeline_preset_names())
    if (arg == n) {
      Pipeline p = Pipeline::from_json(pipeline_preset(n), "pipeline preset " + n);
      p.label_map_from_file = false;  // a preset's label map is a default: the data's numbering wins
      return p;
    }
  return Pipeline::from_file(arg);
}

}  // namespace segscale::transforms
