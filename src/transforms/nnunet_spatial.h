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

// The loaded (enlarged) patch the sampler chose: the box [lbs, lbs + shape) of a case (channels, case_shape),
// read in place; outside the case the image is 0 and the segmentation -1, as nnU-Net's crop-and-pad makes them.
// A plain array is the box at lbs 0 of a case of its own shape.
struct LoadedPatch {
  const float* image = nullptr;
  int channels = 0;
  const std::int16_t* seg = nullptr;
  Extent3 case_shape{}, lbs{}, shape{};

  static LoadedPatch whole(const float* image, int channels, const std::int16_t* seg, const Extent3& shape) {
    return {image, channels, seg, shape, {0, 0, 0}, shape};
  }
};

// -> image_out (channels, patch) and seg_out (1, patch).
void nnunet_spatial(const LoadedPatch& in, const Extent3& patch, const NnunetSpatialParams& p, float* image_out, std::int16_t* seg_out);
inline void nnunet_spatial(const float* image, int channels, const std::int16_t* seg, const Extent3& in_shape, const Extent3& patch,
                           const NnunetSpatialParams& p, float* image_out, std::int16_t* seg_out) {
  nnunet_spatial(LoadedPatch::whole(image, channels, seg, in_shape), patch, p, image_out, seg_out);
}

}  // namespace segscale::transforms
