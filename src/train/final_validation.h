#pragma once
// nnU-Net's final validation of a fold (nnUNetTrainer.perform_actual_validation, then compute_metrics_on_folder):
// every validation case predicted whole with nnU-Net's predictor (infer/nnunet_predict.h: Gaussian, step 0.5, the 8
// mirrorings) from its preprocessed image in the store, sigmoid > 0.5 per region, and per case and region Dice, TP,
// FP, FN against the stored segmentation (-1 counted as background). Written in the layout of nnU-Net's validation/summary.json
// (metric_per_case, mean, foreground_mean; regions keyed "(1, 2, 3)" in dataset.json's order). Cases are compared in
// the cropped space nnU-Net's preprocessing leaves: outside the nonzero crop both prediction and reference are
// background for BraTS, so the Dice is the one nnU-Net reports on the reverted files. Ranks split the cases.
#include <filesystem>
#include <vector>

#include "distributed/comm.h"
#include "env/world.h"
#include "model/network.h"
#include "train/run_data.h"

namespace segscale::train {

struct FinalValidation {
  std::vector<double> mean_dice;  // per network channel (TC, WT, ET), over cases (NaN-skipping)
  double foreground_mean = 0;     // mean over the regions
  int cases = 0;
};

// Predicts `data.split.val` of an nnU-Net store; rank 0 writes `summary` (RUN/validation_summary.json (nnU-Net's validation/summary.json)).
FinalValidation nnunet_final_validation(model::Network& net, const RunData& data, const torch::Device& device, const env::World& world,
                                        distributed::Comm* comm, const std::filesystem::path& summary);

}  // namespace segscale::train
