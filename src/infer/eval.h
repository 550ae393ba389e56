#pragma once
// segscale eval: per-case Dice and 95% Hausdorff distance (mm) of TC, WT and ET, as the BraTS challenge
// scores them. libtorch-free.
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "data/label_map.h"

namespace segscale::infer {

struct CaseScore {
  std::string key;
  std::array<double, 3> dice{}, hd95{};  // TC, WT, ET
};

// Empty regions follow the BraTS challenge's rule: truth and prediction both empty -> Dice 1, HD95 0; only one
// empty -> Dice 0, HD95 373.13 mm (the image diagonal BraTS uses as the worst case).
inline constexpr double kEmptyHausdorff = 373.12866;

// Dice and HD95 of two binary masks on a grid of `size` (x fastest) with voxel `spacing` in mm. HD95 as MONAI's
// compute_hausdorff_distance(percentile=95): surfaces are mask voxels with a 6-neighbour outside the mask (or
// outside the volume); the larger of the two directed 95th percentiles (linear interpolation, as numpy) of the
// Euclidean distances from one surface to the other.
std::pair<double, double> dice_and_hd95(const std::vector<std::uint8_t>& pred, const std::vector<std::uint8_t>& truth,
                                        const std::array<std::int64_t, 3>& size, const std::array<double, 3>& spacing);

// Scores every <case>.nii.gz in `pred_dir` against the same-named file in `truth_dir`, or, when truth_dir is a
// dataset (dataset.json or BraTS folders), against the case's label. Throws Error naming the case for a
// missing truth, a shape mismatch or a label outside `map`.
// The label preset to score with when none is given: the one segscale infer wrote the predictions in (their NIfTI
// description), else the truth's (its dataset, or the dataset.json / BraTS naming of its files), else brats21.
// `source` says which.
std::string default_label_preset(const std::filesystem::path& pred_dir, const std::filesystem::path& truth_dir, std::string* source);

std::vector<CaseScore> evaluate(const std::filesystem::path& pred_dir, const std::filesystem::path& truth_dir, const data::LabelMap& map);

// The truth cases that `evaluate` leaves out because pred_dir holds no prediction for them, sorted: the labelled
// cases of a truth dataset, or the .nii.gz / .nii files of a truth folder, whose key has no <key>.nii.gz (or
// .nii) in pred_dir. Throws as evaluate does for a missing or unreadable folder.
std::vector<std::string> truth_without_prediction(const std::filesystem::path& pred_dir, const std::filesystem::path& truth_dir);

}  // namespace segscale::infer
