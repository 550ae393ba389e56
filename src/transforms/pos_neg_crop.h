#pragma once
// RandCropByPosNegLabeld's crop centres, as MONAI 1.4.0 chooses them (monai/transforms/utils.py:
// map_binary_to_indices, generate_pos_neg_label_crop_centers, correct_crop_centers; SpatialCrop's roi_center
// window). libtorch-free.
//
// Foreground: MONAI drops the first label channel of a multi-channel label ("one-hot background") and counts a
// voxel as foreground when any remaining channel is non-zero. For the TC/WT/ET label that is WT or ET; a raw
// one-channel label map (the chain before the TC/WT/ET expansion) counts the values of the label map's WT and
// ET channels, which is the same set of voxels. Background: every other voxel, or with image_key (here
// `use_image`) only those where some image channel is > image_threshold.
#include <cstdint>
#include <vector>

#include "data/label_map.h"
#include "transforms/rng.h"
#include "transforms/spatial.h"
#include "transforms/volume.h"

namespace segscale::transforms {

struct RandCropPosNegStep;
struct Sample;

// The foreground and background voxels of one grid in flat C order over [X, Y, Z] (MONAI's ravelled indices),
// held as runs, so the k-th foreground (or background) voxel is found by a binary search.
class CropCentres {
 public:
  // `cls[i]` for flat index i: 1 foreground, 2 background, 0 neither. Throws Error when there is neither
  // foreground nor background ("No sampling location available", as MONAI).
  CropCentres(const Shape3& size, const std::vector<std::uint8_t>& cls);

  const Shape3& size() const { return size_; }
  std::int64_t foreground() const { return fg_.total; }
  std::int64_t background() const { return bg_.total; }
  // The flat index of the k-th foreground / background voxel, 0 <= k < foreground() / background().
  std::int64_t foreground_at(std::int64_t k) const { return fg_.at(k); }
  std::int64_t background_at(std::int64_t k) const { return bg_.at(k); }

 private:
  struct Runs {
    std::vector<std::int64_t> start, before;  // run i covers [start[i], start[i] + (before[i+1] - before[i]))
    std::int64_t total = 0;
    std::int64_t at(std::int64_t k) const;
  };
  Shape3 size_{};
  Runs fg_, bg_;
};

// The voxel classes of CropCentres for `label` (`label_channels` uint8 channels of `size`, C order: 1 channel
// = raw label values read through `map`'s WT and ET sets; more channels = 0/1 channels of which the first is
// ignored, as MONAI) and, when `image` is given (float32 [C, X, Y, Z]), background only where some image
// channel is > image_threshold.
std::vector<std::uint8_t> crop_classes(const Shape3& size, const std::uint8_t* label, std::int64_t label_channels, const data::LabelMap& map,
                                       const float* image, std::int64_t image_channels, double image_threshold, bool use_image);

// crop_classes for a sample in the chain (its image and label), as the step configures it.
CropCentres crop_centres(const RandCropPosNegStep& step, const Sample& s, const data::LabelMap& map);

struct PosNegDraw {
  Shape3 center{};        // after correct_crop_centers
  bool foreground = false;
  Box box;                // the crop window
};

// One crop's draws from stream kInner of `slot`: rand() < pos / (pos + neg) chooses the foreground list
// (pos_ratio 0 or 1 when one list is empty, as MONAI), randint(len) the voxel; then MONAI's centre correction
// and the window [max(center - roi / 2, 0), + roi) clipped to the grid. Throws Error when the roi is larger
// than the grid and allow_smaller is false (MONAI's ValueError).
PosNegDraw draw_pos_neg_crop(const RandCropPosNegStep& step, const CropCentres& centres, RandomSource& rng, int slot);

}  // namespace segscale::transforms
