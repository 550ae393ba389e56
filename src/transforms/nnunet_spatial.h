#pragma once
// nnU-Net's SpatialTransform as batchgeneratorsv2 0.3.6 applies it with nnU-Net's settings (no elastic
// deformation, the patch centred in the loaded patch, zeros padding for the image, the segmentation padded with
// -1): without rotation or scaling a plain centre crop; otherwise the grid A = Rz Ry Rx diag(zoom) applied to the
// centred output grid, the image sampled trilinearly (torch's grid_sample, align_corners=False) and the
// segmentation by per-label trilinear scores rounded to float16, the top score winning (ties to the earlier
// label), the nearest neighbour settling every tie it is part of, and -1 competing where the kernel may leave
// the input. ../shared/spec/nnunet-semantics.md section 5.2-5.3. libtorch-free.
#include <array>
#include <cstdint>

#include "transforms/nnunet_intensity.h"

namespace segscale::transforms {

struct NnunetSpatialParams {
  bool rotate = false, scale = false;
  std::array<double, 3> angles{};  // radians, about axes 0, 1, 2
  double zoom = 1;                 // > 1 samples a larger region (structures shrink)
};

// image (channels, in_shape) and seg (1, in_shape) -> image_out (channels, patch) and seg_out (1, patch).
void nnunet_spatial(const float* image, int channels, const std::int16_t* seg, const Extent3& in_shape, const Extent3& patch,
                    const NnunetSpatialParams& p, float* image_out, std::int16_t* seg_out);

}  // namespace segscale::transforms
