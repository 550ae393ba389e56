#pragma once
// MONAI's training losses (DiceLoss, DiceCELoss, DiceFocalLoss, DeepSupervisionLoss, as MONAI 1.4 computes
// them) and DiceMetric with its post-processing (spec section 10).
#include <array>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/torch_compat.h"

namespace segscale::model {

struct DiceLossOptions {
  double smooth_nr = 1e-5;  // the case study's (MONAI's default); MONAI's later tutorials use 0
  double smooth_dr = 1e-5;
};

// logits, target: [N, C, ...]. p = sigmoid(logits); per (n, c): 1 - (2 sum(p t) + nr) / (sum(t^2) + sum(p^2) + dr);
// mean over n and c. Differentiable.
torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& target, const DiceLossOptions& o = {});

// A training loss as MONAI 1.4's class of that name with these constructor arguments (MONAI's names), on
// multi-channel targets [N, C, ...] of the same shape as the logits (segscale's labels are channels already:
// no to_onehot_y). Defaults: the case study's DiceLoss(sigmoid=True, squared_pred=True, smooth 1e-5).
struct LossConfig {
  std::string name = "dice";  // dice: DiceLoss | dicece: DiceCELoss | dicefocal: DiceFocalLoss
  bool include_background = true;
  bool sigmoid = true;
  bool softmax = false;
  bool squared_pred = true;
  bool jaccard = false;
  bool batch = false;
  double smooth_nr = 1e-5, smooth_dr = 1e-5;
  double lambda_dice = 1.0;
  double lambda_ce = 1.0;      // dicece
  double lambda_focal = 1.0;   // dicefocal
  double gamma = 2.0;          // dicefocal
  std::optional<double> alpha; // dicefocal
  // {"name": ..., every argument}; from_json takes any subset over `base` and throws UsageError naming `where`
  // and the key for an unknown name or key, a wrong type, or an impossible value.
  nlohmann::json to_json() const;
  static LossConfig from_json(const nlohmann::json& j, const std::string& where, const LossConfig& base);
};

// The loss of `output` against `target` [N, C, X, Y, Z]. `output` is [N, C, X, Y, Z] logits, or a deep-supervised
// net's heads [N, H, C, X, Y, Z] (each at the target's size): then MONAI's DeepSupervisionLoss(weight_mode="exp"),
// sum over heads h of max(0.5^h, 0.0625) * loss(head h) (not normalised; for H <= 4 the dynunet pipeline's 0.5^h).
// Computed in output's dtype (MONAI's FocalLoss and DeepSupervisionLoss compute in float32). Differentiable.
// - dice: per (n, c) (or per c with batch): 1 - (2 sum(p t) + nr) / (sum(t^k) + sum(p^k) + dr), k = 2 with
//   squared_pred else 1, jaccard: denominator 2 (d - i); p = sigmoid/softmax(logits) or logits; channel 0 dropped
//   when !include_background and C > 1; mean.
// - dicece: lambda_dice dice + lambda_ce CE, where CE is torch's CrossEntropyLoss over channels with the target as
//   class probabilities when C > 1 (whatever sigmoid says, as MONAI 1.4), BCEWithLogitsLoss when C == 1; mean.
// - dicefocal: lambda_dice dice + lambda_focal sigmoid focal loss (gamma, alpha; channel 0 dropped as dice's); mean.
torch::Tensor segmentation_loss(const torch::Tensor& output, const torch::Tensor& target, const LossConfig& c);

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
