#include "model/nnunet_loss.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/error.h"

namespace segscale::model {

torch::Tensor nnunet_dc_bce(const torch::Tensor& logits, const torch::Tensor& target, bool batch_dice, double smooth) {
  if (logits.sizes() != target.sizes())
    throw Error(fmt::format("nnU-Net loss: output {} and target {} differ in shape", fmt::join(logits.sizes(), "x"), fmt::join(target.sizes(), "x")));
  std::vector<std::int64_t> axes;
  for (std::int64_t d = 2; d < logits.dim(); ++d) axes.push_back(d);
  const torch::Tensor x = torch::sigmoid(logits);
  const torch::Tensor y = target.to(torch::kFloat32);  // y_onehot, under no_grad in nnU-Net (a constant here too)
  torch::Tensor intersect = (x * y).sum(axes, false, torch::kFloat32);
  torch::Tensor sum_pred = x.sum(axes, false, torch::kFloat32);
  torch::Tensor sum_gt = y.sum(axes, false, torch::kFloat32);
  if (batch_dice) {
    intersect = intersect.sum(0, false, torch::kFloat32);
    sum_pred = sum_pred.sum(0, false, torch::kFloat32);
    sum_gt = sum_gt.sum(0, false, torch::kFloat32);
  }
  const torch::Tensor dc = ((2 * intersect + smooth) / (sum_gt + sum_pred + smooth).clamp_min(1e-8)).mean();
  const torch::Tensor bce = torch::binary_cross_entropy_with_logits(logits, target.to(logits.dtype()));
  return bce + (-dc);
}

std::vector<double> nnunet_deep_supervision_weights(std::size_t outputs) {
  std::vector<double> w(outputs);
  double sum = 0;
  for (std::size_t i = 0; i < outputs; ++i) sum += w[i] = i + 1 == outputs && outputs > 1 ? 0.0 : 1.0 / static_cast<double>(1ULL << i);
  for (auto& v : w) v /= sum;
  return w;
}

std::vector<torch::Tensor> nnunet_deep_supervision_targets(const torch::Tensor& target, const std::vector<torch::Tensor>& outputs) {
  std::vector<torch::Tensor> t;
  for (const auto& o : outputs) {
    const auto size = o.sizes().slice(2).vec();
    if (size == target.sizes().slice(2).vec()) {
      t.push_back(target);
      continue;
    }
    // The ATen op F.interpolate(mode="nearest-exact", size=...) calls; the C++ frontend's interpolate warns on every call
    // about a default that does not apply to nearest modes.
    t.push_back(at::_upsample_nearest_exact3d(target.to(torch::kFloat32), size, c10::nullopt, c10::nullopt, c10::nullopt).to(target.dtype()));
  }
  return t;
}

torch::Tensor nnunet_deep_supervision_loss(const std::vector<torch::Tensor>& outputs, const std::vector<torch::Tensor>& targets,
                                           bool batch_dice, double smooth) {
  if (outputs.empty() || outputs.size() != targets.size())
    throw Error(fmt::format("nnU-Net loss: {} outputs and {} targets", outputs.size(), targets.size()));
  const std::vector<double> w = nnunet_deep_supervision_weights(outputs.size());
  torch::Tensor loss;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (w[i] == 0.0) continue;
    torch::Tensor l = w[i] * nnunet_dc_bce(outputs[i], targets[i], batch_dice, smooth);
    loss = loss.defined() ? loss + l : l;
  }
  return loss;
}

}  // namespace segscale::model
