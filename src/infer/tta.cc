#include "infer/tta.h"

#include "util/error.h"

namespace segscale::infer {

std::vector<std::vector<std::int64_t>> tta_flip_dims() { return {{}, {4}, {3}, {4, 3}, {2}, {4, 2}, {3, 2}, {4, 3, 2}}; }

torch::Tensor tta_probabilities(const torch::Tensor& x, const std::function<torch::Tensor(const torch::Tensor&)>& predict_logits,
                                const std::string& mode) {
  if (mode == "none") return torch::sigmoid(predict_logits(x).to(torch::kFloat32));
  if (mode != "flip") throw UsageError("--tta must be none or flip");
  torch::Tensor sum;
  const auto combos = tta_flip_dims();
  for (const auto& dims : combos) {
    torch::Tensor p = dims.empty() ? torch::sigmoid(predict_logits(x).to(torch::kFloat32))
                                   : torch::sigmoid(predict_logits(x.flip(dims)).to(torch::kFloat32)).flip(dims);
    sum = sum.defined() ? sum + p : p;
  }
  return sum / static_cast<double>(combos.size());
}

}  // namespace segscale::infer
