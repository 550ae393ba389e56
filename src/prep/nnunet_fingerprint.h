#pragma once
// nnU-Net's dataset fingerprint (nnunetv2 2.8.1 experiment_planning/dataset_fingerprint/fingerprint_extractor.py):
// per training case its spacing and its shape after the crop to nonzero, the median share of voxels the crop
// keeps, and intensity statistics of foreground voxels (label > 0) drawn as nnU-Net draws them: per case a
// numpy RandomState(1234), per channel int(1e8 // cases) draws with replacement. Axes are nnU-Net's: a0 = z,
// a1 = y, a2 = x (SimpleITK's array order). Written and read as nnU-Net's dataset_fingerprint.json.
// libtorch-free.
#include <array>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/catalog.h"
#include "prep/nonzero_crop.h"

namespace segscale::prep {

struct IntensityProperties {
  double mean = 0, median = 0, std = 0, min = 0, max = 0, percentile_99_5 = 0, percentile_00_5 = 0;
};

struct DatasetFingerprint {
  std::vector<std::array<double, 3>> spacings;  // per case, nnU-Net's axis order
  std::vector<Shape> shapes_after_crop;
  std::vector<IntensityProperties> foreground_intensity_properties_per_channel;
  double median_relative_size_after_cropping = 1;

  nlohmann::ordered_json to_json() const;
  // Throws Error naming `where` for a file that is not a fingerprint.
  static DatasetFingerprint from_json(const nlohmann::json& j, const std::string& where);
};

// A case's channels as float32, C-ordered in nnU-Net's axes, with its spacing.
struct CaseArrays {
  Shape shape{};
  std::array<double, 3> spacing{};
  std::vector<std::vector<float>> channels;
  std::vector<float> seg;  // empty for a case without labels
};

// Reads a case's image files (one per channel, or one 4-D file holding them) and its label. Throws Error naming
// the file for a file that cannot be read, channels that disagree in shape with each other or with the label.
CaseArrays read_case_arrays(const data::Case& c, std::size_t channels);

// The fingerprint of the catalog's training cases, on `threads` threads (0: all cores). Throws Error naming
// the case for an unreadable case.
DatasetFingerprint extract_fingerprint(const data::Catalog& catalog, int threads);

}  // namespace segscale::prep
