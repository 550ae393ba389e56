#pragma once
// nnU-Net's intensity augmentations on one channel of a patch, given their drawn parameters, as
// batchgeneratorsv2 0.3.6 applies them (float32 arithmetic in the same order; means and deviations summed in
// float64 where torch sums float32, so values agree to about 1e-6): MultiplicativeBrightnessTransform,
// ContrastTransform (preserve_range), GammaTransform (invert, retain stats) and SimulateLowResolutionTransform
// (nearest-exact down, trilinear up, one zoom for all axes). The draws and the probability gates are the chain's
// (../shared/spec/nnunet-semantics.md section 5). libtorch-free.
#include <array>
#include <cstddef>
#include <cstdint>

namespace segscale::transforms {

using Extent3 = std::array<std::int64_t, 3>;

// x <- x * m
void nnunet_brightness(float* x, std::size_t n, float multiplier);
// x <- clamp((x - mean) * m + mean, min, max), mean/min/max of the channel before the change
void nnunet_contrast(float* x, std::size_t n, float multiplier);
// Optional inversion, x <- ((x - min) / max(range, 1e-7))^gamma * range + min, optionally back to the old mean and
// (unbiased) deviation, inversion undone.
void nnunet_gamma(float* x, std::size_t n, float gamma, bool invert, bool retain_stats);
// GaussianBlurTransform on one channel: separable along axes 0, 1, 2 with sigma per axis, kernel size the odd
// number nearest 6 sigma + 0.5, reflect padding (torch's direct convolution; nnU-Net's benchmark mode may pick
// its FFT twin, equal to about 1e-6).
void nnunet_blur(float* x, const Extent3& shape, const std::array<double, 3>& sigma);
// Down to round(size * zoom) per axis with torch's nearest-exact, back up with trilinear (align_corners=False).
void nnunet_low_resolution(float* x, const Extent3& shape, float zoom);

}  // namespace segscale::transforms
