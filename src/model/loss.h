#pragma once
// MONAI's DiceLoss(sigmoid=True, squared_pred=True) and DiceMetric with its post-processing (spec section 10).
#include <array>
#include <vector>

#include "model/torch_compat.h"

namespace segscale::model {

struct DiceLossOptions {
  double smooth_nr = 1e-5;  // the case study's (MONAI's default); MONAI's later tutorials use 0
  double smooth_dr = 1e-5;
};

// logits, target: [N, C, ...]. p = sigmoid(logits); per (n, c): 1 - (2 sum(p t) + nr) / (sum(t^2) + sum(p^2) + dr);
// mean over n and c. Differentiable.
torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& target, const DiceLossOptions& o = {});

// Binarised prediction: sigmoid(logits) >= 0.5 in float32 (not logits >= 0: float32 sigmoid is exactly 0.5 for
// |x| below ~3e-8).
torch::Tensor binarize(const torch::Tensor& logits);

// Per-sample, per-channel Dice of binary predictions: 2|P and T| / (|P| + |T|), NaN where the truth is empty.
// Returns [N][C] doubles.
std::vector<std::vector<double>> dice_per_sample(const torch::Tensor& pred, const torch::Tensor& target);

// MONAI's aggregation of per-sample results over a whole validation run.
struct DiceSummary {
  std::vector<double> per_channel;  // "mean_batch": per channel over samples, NaNs skipped (0 if all NaN, as MONAI)
  double mean = 0;                  // "mean": per sample over non-NaN channels, then over samples with any; 0 if none
};
DiceSummary summarize_dice(const std::vector<std::vector<double>>& rows);

}  // namespace segscale::model
