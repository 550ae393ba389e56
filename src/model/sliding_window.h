#pragma once
// MONAI's sliding_window_inference (1.4.0): pad to the roi where the volume is smaller (constant 0, split
// evenly), windows every int(roi * (1 - overlap)) voxels with the last one flush with the end, blend with
// constant or Gaussian (sigma = 0.125 * roi, clamped at its minimum or 1e-3) importance, divide by the summed
// importance, crop the padding.
#include <array>
#include <functional>
#include <string>

#include "model/torch_compat.h"

namespace segscale::model {

struct SlidingWindowOptions {
  std::array<std::int64_t, 3> roi{128, 128, 64};
  double overlap = 0.25;
  int sw_batch = 1;
  std::string mode = "constant";  // or "gaussian"
  double sigma_scale = 0.125;
};

// input [1, C, X, Y, Z]; predictor maps [B, C, rx, ry, rz] to [B, K, rx, ry, rz]. Returns [1, K, X, Y, Z].
torch::Tensor sliding_window_inference(const torch::Tensor& input, const std::function<torch::Tensor(const torch::Tensor&)>& predictor,
                                       const SlidingWindowOptions& o);

}  // namespace segscale::model
