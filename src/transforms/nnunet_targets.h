#pragma once
// nnU-Net's last training transforms and its targets, as batchgeneratorsv2 0.3.6 applies them: MirrorTransform
// (image and segmentation flipped together), MaskImageTransform (image 0 where the segmentation is < 0, on the
// channels normalised with the mask), RemoveLabelTransform (-1 -> 0), ConvertSegmentationToRegionsTransform (one
// boolean channel per region) and DownsampleSegForDSTransform (nearest-exact from full resolution per scale).
// Patches are C-ordered (channels, a0, a1, a2). libtorch-free.
#include <array>
#include <cstdint>
#include <vector>

#include "transforms/nnunet_intensity.h"

namespace segscale::transforms {

// Flips `channels` volumes of `shape` in place along the given axes (0..2).
template <typename T>
void nnunet_mirror(T* data, int channels, const Extent3& shape, const std::vector<int>& axes);

void nnunet_mask_image(float* image, int channels, const std::int16_t* seg, const Extent3& shape, const std::vector<bool>& apply_to_channel);

void nnunet_remove_label(std::int16_t* seg, std::size_t n, std::int16_t label = -1, std::int16_t set_to = 0);

// (regions, a0, a1, a2) of 0/1: voxel's label in the region.
std::vector<std::uint8_t> nnunet_regions(const std::int16_t* seg, std::size_t n, const std::vector<std::vector<int>>& regions);

// Each channel to round(size * scale) per axis with torch's nearest-exact; the shape it gives back.
template <typename T>
std::vector<T> nnunet_downsample(const T* data, int channels, const Extent3& shape, const std::array<double, 3>& scale, Extent3& out_shape);

}  // namespace segscale::transforms
