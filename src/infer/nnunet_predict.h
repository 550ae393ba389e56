#pragma once
// nnU-Net's sliding-window prediction (nnunetv2 2.8.1 nnUNetPredictor.predict_sliding_window_return_logits) of one
// preprocessed case: the image padded (centred, zeros) to at least the patch, tiles at nnU-Net's steps
// (compute_steps_for_sliding_window, step 0.5 of the patch), each tile's logits averaged over the 8 mirrorings
// (every combination of the spatial axes, in itertools' order, flipped back), weighted by nnU-Net's Gaussian
// importance map (compute_gaussian: sigma 1/8 of the patch, peak 10, float16, zeros raised to the smallest
// value) and accumulated, as nnU-Net does, in float16; the padding removed.
#include <cstdint>
#include <functional>
#include <vector>

#include "model/torch_compat.h"

namespace segscale::infer {

// nnU-Net's tile starts per axis.
std::vector<std::vector<std::int64_t>> nnunet_steps(const std::vector<std::int64_t>& image, const std::vector<std::int64_t>& tile,
                                                    double step = 0.5);

// nnU-Net's Gaussian importance map of a tile, float16.
torch::Tensor nnunet_gaussian(const std::vector<std::int64_t>& tile, double sigma_scale = 1.0 / 8, double value_scaling = 10);

struct NnunetPredictOptions {
  std::vector<std::int64_t> patch;   // the plan's patch size (3 axes)
  double step = 0.5;
  bool gaussian = true;
  std::vector<int> mirror_axes{0, 1, 2};  // spatial axes mirrored (empty: no mirroring)
};

// image: [C, X, Y, Z] float32; net: [1, C, patch] -> [1, K, patch] logits (float32). Returns [K, X, Y, Z] float16
// logits on the image's grid. Throws Error for an image of another rank or an empty patch.
torch::Tensor nnunet_predict_logits(const torch::Tensor& image, const std::function<torch::Tensor(const torch::Tensor&)>& net,
                                    const NnunetPredictOptions& o);

}  // namespace segscale::infer
