#pragma once
// nnU-Net's DefaultPreprocessor for one case (nnunetv2 2.8.1 preprocessing/preprocessors/default_preprocessor.py,
// run_case_npy): transpose_forward, crop to nonzero with -1 marking the cropped-away background in the
// segmentation, per-channel normalisation before resampling (ZScore with nnU-Net's mask rule, CT with the
// fingerprint's percentiles, noNorm, rescale_to_0_1, rgb_to_0_1), resampling to the configuration's spacing, and
// the foreground locations its sampler oversamples from (RandomState(1234), up to 10,000 per class or region, at
// least 1%). libtorch-free.
//
// Not yet: the resampling itself (skimage's cubic spline for images, per-label linear for segmentations,
// separate z when anisotropic). A case already at the configuration's spacing is not resampled by nnU-Net either
// (BraTS at 1 mm); any other case is refused with its spacing and the target's.
#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "prep/nnunet_fingerprint.h"

namespace segscale::prep {

// What preprocessing reads from a plans file (one configuration) and its dataset.json.
struct NnunetPreprocessing {
  std::array<int, 3> transpose_forward{0, 1, 2};
  std::vector<double> spacing;  // the configuration's target spacing, transposed axes (2 entries for 2d)
  std::vector<std::string> normalization_schemes;
  std::vector<bool> use_mask_for_norm;
  std::vector<IntensityProperties> intensity;  // foreground_intensity_properties_per_channel (CT uses them)
  // Classes whose voxel locations the sampler oversamples: regions (label values per region) or single labels.
  std::vector<std::vector<int>> foreground;
  bool regions = false;

  // Throws Error naming `where` for a plans file without the configuration or with fields it cannot use.
  // dataset_json keeps its key order (the regions are taken in dataset.json's order).
  static NnunetPreprocessing from_plans(const nlohmann::json& plans, const std::string& configuration, const nlohmann::ordered_json& dataset_json,
                                        const std::string& where);
};

struct NnunetCase {
  Shape shape{};                       // after cropping (and resampling), nnU-Net's transposed axes
  std::vector<float> data;             // channels x voxels, C order
  std::vector<std::int16_t> seg;       // voxels; -1 outside the nonzero mask; empty without a label
  Shape shape_before_cropping{}, shape_after_cropping_and_before_resampling{};
  Box bbox_used_for_cropping;
  std::array<double, 3> spacing{};     // the case's own spacing, nnU-Net's reader order (z, y, x)
  // Per class or region (in the plan's order): rows (0, i0, i1, i2) of drawn foreground voxels.
  std::vector<std::vector<std::array<std::int64_t, 4>>> class_locations;
};

// Throws Error for a case that would need resampling (see above) or a channel count the plan does not have.
NnunetCase nnunet_preprocess(CaseArrays arrays, const NnunetPreprocessing& p);

// The last steps of nnU-Net's convert_predicted_logits_to_segmentation_with_correct_shape for a case predicted at
// its preprocessed shape (no resampling): the segmentation (c.shape, C order) put into its crop box of
// shape_before_cropping (0 elsewhere), then transpose_backward. Returns the case's own C-ordered (z, y, x) grid.
std::vector<std::uint8_t> nnunet_revert_cropping(const std::vector<std::uint8_t>& seg, const NnunetCase& c, const std::array<int, 3>& transpose_forward);

// DefaultPreprocessor._sample_foreground_locations(seg, classes, seed 1234) on a C-ordered label array.
std::vector<std::vector<std::array<std::int64_t, 4>>> sample_foreground_locations(const std::vector<std::int16_t>& seg, const Shape& shape,
                                                                                   const std::vector<std::vector<int>>& classes);

}  // namespace segscale::prep
