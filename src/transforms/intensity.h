#pragma once
// NormalizeIntensityd(nonzero, channel_wise) and the scale/shift augmentations (spec sections 7-8).
#include <cstddef>
#include <string>

#include "data/label_map.h"
#include "transforms/volume.h"

namespace segscale::transforms {

// NormalizeIntensity's statistics of n values: mean and population std of the values != 0 (all when
// !nonzero), summed in double over 8 interleaved lanes (a fixed order: the same bits on every machine and in
// every executor of the chain), then rounded to float32; std 0 counts as 1. count 0: nothing was selected.
// A non-finite selected value: Error naming `where`, the value and its index.
struct Moments {
  float mean = 0, std = 1;
  std::size_t count = 0;
};
Moments intensity_moments(const float* p, std::size_t n, bool nonzero, const std::string& where);

// One pass over n values: the normalisation by `m` (when given and m->count > 0; values == 0 stay as they are
// when nonzero), then x * scale when `scale`, then x + shift when `shift`: each value sees exactly the float32
// operations of normalize_intensity, scale_intensity and shift_intensity run one after the other.
void normalize_scale_shift(float* p, std::size_t n, const Moments* m, bool nonzero, const float* scale, const float* shift) noexcept;

// Per channel (or over all channels when !channel_wise): mean and population std of the voxels != 0 (all
// voxels when !nonzero), computed in double and rounded to float32; those voxels become (v - mean) / std in
// float32, zeros stay exactly 0. A channel with no such voxel is left unchanged; std == 0 counts as 1.
// Non-finite voxels make the statistics meaningless: Error naming `where`.
void normalize_intensity(Volume& v, bool nonzero, bool channel_wise, const std::string& where = "image");

// v <- v * float32(1 + factor) for every voxel (background zeros included).
void scale_intensity(Volume& v, double factor);
// v <- v + float32(offset) for every voxel.
void shift_intensity(Volume& v, double offset);

// The label map expanded to 0/1 channels TC, WT, ET: uint8 (as stores hold them) or float32 (as MONAI's).
LabelVolume label_channels_u8(const LabelVolume& label, const data::LabelMap& map);
Volume label_channels(const LabelVolume& label, const data::LabelMap& map);

}  // namespace segscale::transforms
