#include "train/step.h"

#include "util/fault.h"

namespace segscale::train {

TrainStep::Outcome TrainStep::run(const torch::Tensor& x, const torch::Tensor& y, Position& pos) {
  Outcome out;
  opt_.zero_grad();
  if (amp_.enabled) {  // autocast for the forward pass (CUDA or CPU); the loss in float32
    compat::set_autocast(x.device().type(), true, amp_.dtype);
    std::vector<torch::Tensor> heads = net_.forward_heads(x);
    compat::set_autocast(x.device().type(), false, amp_.dtype);  // the same dtype: libtorch 1.13 refuses any CPU one but bf16
    for (auto& h : heads) h = h.to(torch::kFloat32);
    out.loss = loss_(heads, y);
  } else {
    out.loss = loss_(net_.forward_heads(x), y);
  }
  fault_point("train.step");
  fault_point("train.hang");
  if (sync_) sync_->begin();
  // fp16 needs loss scaling (bf16 has float32's range): a dynamic scaler as torch.cuda.amp.GradScaler.
  const bool scaled = amp_.scaled();
  (scaled ? out.loss * pos.loss_scale : out.loss).backward();
  out.comm_seconds = sync_ ? sync_->finish() : 0.0;
  if (scaled) {
    torch::NoGradGuard g;
    std::vector<torch::Tensor> finite;  // one flag per gradient, read back once: one device sync per step
    for (auto& p : net_.parameters())
      if (p.grad().defined()) {
        p.mutable_grad().div_(pos.loss_scale);
        finite.push_back(torch::isfinite(p.grad()).all());
      }
    out.applied = finite.empty() || torch::stack(finite).all().item<bool>();
    if (!out.applied) {  // skip this step, as GradScaler does
      pos.loss_scale /= 2;
      pos.good_steps = 0;
    } else if (++pos.good_steps % 2000 == 0) {
      pos.loss_scale *= 2;
    }
  }
  if (out.applied && clip_norm_ > 0) torch::nn::utils::clip_grad_norm_(net_.parameters(), clip_norm_);
  if (out.applied) opt_.step();
  return out;
}

}  // namespace segscale::train
