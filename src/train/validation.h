#pragma once
// Validation during training: MONAI's DiceMetric (sigmoid >= 0.5, per-sample, per-channel) over the held-out
// cases, either on the centre crop of the roi (the case study) or on whole volumes by sliding window. Each
// rank scores every world-th case; the rows are gathered so every rank returns the same summary.
#include <memory>

#include "distributed/comm.h"
#include "env/world.h"
#include "loader/batch_source.h"
#include "loader/loader.h"
#include "model/loss.h"
#include "model/network.h"
#include "train/run_data.h"

namespace segscale::train {

class Validator {
 public:
  // `train_lo`: the training loader's options (threads, pipeline, skip_bad), adapted for validation.
  // All references must outlive the validator.
  Validator(const TrainOptions& o, const RunData& data, const loader::LoaderOptions& train_lo, const torch::Device& device,
            const env::World& world, distributed::Comm* comm)
      : o_(o), data_(data), train_lo_(train_lo), device_(device), world_(world), comm_(comm) {}
  bool enabled() const { return !data_.split.val.empty(); }
  // Scores `net` (in eval mode, set back to training mode after). An empty summary when !enabled(). `epoch` keys
  // the patches --val-mode pseudo samples (the same ones after a resume).
  model::DiceSummary run(model::Network& net, std::int64_t epoch = 0);

 private:
  const TrainOptions& o_;
  const RunData& data_;
  const loader::LoaderOptions& train_lo_;
  torch::Device device_;
  env::World world_;
  distributed::Comm* comm_;
  // nnU-Net's pseudo-Dice (nnUNetTrainer.validation_step and on_validation_epoch_end): tp, fp and fn of
  // sigmoid(logits) > 0.5 per region, summed over --val-steps batches sampled as nnU-Net's validation loader
  // samples them (no augmentation) and over the ranks; Dice 2tp / (2tp + fp + fn) per region.
  model::DiceSummary pseudo_dice(model::Network& net, std::int64_t epoch);

  std::unique_ptr<loader::BatchSource> device_cache_;  // --device-cache: the validation cases, loaded at the first validation
  std::unique_ptr<loader::NnunetLoader> nnunet_;       // --val-mode pseudo: the validation cases' loader
};

}  // namespace segscale::train
