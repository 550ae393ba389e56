#pragma once
// LoadImaged + EnsureChannelFirstd: NIfTI files to a channel-first Volume, as MONAI 1.4.0 loads them.
#include <filesystem>
#include <vector>

#include "data/label_map.h"
#include "transforms/volume.h"

namespace segscale::transforms {

// One 4-D file ([X,Y,Z,C] on disk, channels moved first) or several 3-D files stacked in the given order.
// Values are nibabel's scaled data cast to float32; the affine is the first file's (nibabel's choice).
// Throws Error naming the file for unreadable files, and for modalities of different shapes or affines.
Volume load_image(const std::vector<std::filesystem::path>& files);

// A 3-D label map. Every value must be a whole number known to `map` (else Error naming the file).
LabelVolume load_label(const std::filesystem::path& file, const data::LabelMap& map);

}  // namespace segscale::transforms
