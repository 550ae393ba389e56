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

// The label maps to score with: predictions and truth may be numbered differently (a model trained on BraTS 2021
// predicting for BraTS 2023 truth). Each is the flag's when given (--pred-label-map / --truth-label-map, else
// --label-map for both), else its own data's: the predictions' the one segscale infer wrote them in (their NIfTI
// description), the truth's its dataset (or the dataset.json / BraTS naming of its files); a side whose data
// shows nothing takes the other's, and both brats21 when neither does. The truth takes the predictions' map when
// its data allows that reading too (MSD's labels read as blog or msd). `*_source` say where each came from.
struct EvalLabelMaps {
  std::string pred, truth, pred_source, truth_source;
};
EvalLabelMaps choose_eval_label_maps(const std::filesystem::path& pred_dir, const std::filesystem::path& truth_dir, const std::string& both,
                                     const std::string& pred_flag, const std::string& truth_flag);

// Scores every <case>.nii.gz in `pred_dir` against the same-named file in `truth_dir`, or, when truth_dir is a
// dataset (dataset.json or BraTS folders), against the case's label, each read with its own map (TC/WT/ET from
// pred_map's values in the prediction, truth_map's in the truth). Throws Error naming the case for a missing
// truth, a shape mismatch or a label outside its map.
std::vector<CaseScore> evaluate(const std::filesystem::path& pred_dir, const std::filesystem::path& truth_dir, const data::LabelMap& pred_map,
                                const data::LabelMap& truth_map);

// The truth cases that `evaluate` leaves out because pred_dir holds no prediction for them, sorted: the labelled
// cases of a truth dataset, or the .nii.gz / .nii files of a truth folder, whose key has no <key>.nii.gz (or
// .nii) in pred_dir. Throws as evaluate does for a missing or unreadable folder.
std::vector<std::string> truth_without_prediction(const std::filesystem::path& pred_dir, const std::filesystem::path& truth_dir);

}  // namespace segscale::infer
