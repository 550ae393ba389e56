#pragma once
// One training step: forward (autocast under AMP), loss in float32, backward (loss-scaled for fp16),
// gradient averaging over ranks, optimiser step.
#include <functional>

#include "distributed/comm.h"
#include "model/network.h"
#include "train/checkpoint.h"

namespace segscale::train {

// The training loss: `outputs` are Network::forward_heads's (one tensor, forward_train's [N, C, X, Y, Z] or MONAI's
// stacked heads [N, heads, C, X, Y, Z]; or nnU-Net's heads at their own resolutions), `target` the label
// [N, C, X, Y, Z]. Returns a scalar.
using LossFn = std::function<torch::Tensor(const std::vector<torch::Tensor>& outputs, const torch::Tensor& target)>;

struct AmpSettings {
  bool enabled = false;
  at::ScalarType dtype = at::kBFloat16;  // kBFloat16, or kHalf (fp16, with dynamic loss scaling)
  bool scaled() const { return enabled && dtype == at::kHalf; }
};

class TrainStep {
 public:
  // `sync`: gradient averaging over ranks (null for one process). All references must outlive the step.
  // `clip_norm` > 0: the gradients' global L2 norm is clipped to it before the optimiser step (after unscaling and
  // averaging over ranks), as torch.nn.utils.clip_grad_norm_ in nnU-Net's train_step.
  TrainStep(model::Network& net, torch::optim::Optimizer& opt, LossFn loss, AmpSettings amp, distributed::GradSync* sync, double clip_norm = 0)
      : net_(net), opt_(opt), loss_(std::move(loss)), amp_(amp), sync_(sync), clip_norm_(clip_norm) {}

  struct Outcome {
    torch::Tensor loss;         // this rank's loss (a device scalar; reading it syncs)
    double comm_seconds = 0;    // waited for gradient averaging
    bool applied = true;        // false when fp16 gradients overflowed and the step was skipped (as GradScaler)
  };
  // x, y on the device. Updates pos.loss_scale / pos.good_steps under fp16 AMP (as torch.cuda.amp.GradScaler:
  // halve on overflow, double after 2000 good steps); does not advance pos.step.
  Outcome run(const torch::Tensor& x, const torch::Tensor& y, Position& pos);

 private:
  model::Network& net_;
  torch::optim::Optimizer& opt_;
  LossFn loss_;
  AmpSettings amp_;
  distributed::GradSync* sync_;
  double clip_norm_ = 0;
};

}  // namespace segscale::train
