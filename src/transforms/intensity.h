#pragma once
// NormalizeIntensityd(nonzero, channel_wise) and the scale/shift augmentations (spec sections 7-8).
#include "data/label_map.h"
#include "transforms/volume.h"

namespace segscale::transforms {

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
