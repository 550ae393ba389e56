#pragma once
// Mirror test-time augmentation (`segscale infer --tta flip`), as nnU-Net does it: the prediction is the mean
// of the sigmoid probabilities over every combination of flips of the three spatial axes (8, the unflipped
// input included), each flipped back before it is added. Each combination runs the whole sliding window on the
// flipped volume (MONAI's way: sliding_window_inference(flip(x)), flipped back). The sum is taken in nnU-Net
// v1's order (none, z, y, y+z, x, x+z, x+y, x+y+z; z = the last axis) in float32, then divided by 8.
#include <functional>
#include <string>
#include <vector>

#include "model/torch_compat.h"

namespace segscale::infer {

// The tensor dimensions flipped by each combination for a [B, C, X, Y, Z] input, in the order above.
std::vector<std::vector<std::int64_t>> tta_flip_dims();

// Probabilities [1, K, X, Y, Z] (float32) for `x` [1, C, X, Y, Z]: sigmoid(predict_logits(x)) for mode "none",
// the flip mean above for "flip". Throws UsageError for another mode.
torch::Tensor tta_probabilities(const torch::Tensor& x, const std::function<torch::Tensor(const torch::Tensor&)>& predict_logits,
                                const std::string& mode);

}  // namespace segscale::infer
