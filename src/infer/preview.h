#pragma once
// One picture to check a segmentation at a glance: axial, coronal and sagittal slices through the tumour
// centre, the scan in grey, edema / core / enhancing tumour tinted green / yellow / red, and a legend.
#include <filesystem>
#include <string>

#include "transforms/volume.h"

namespace segscale::infer {

// `image` and `regions` share one RAS grid; regions hold 0 (none), 1 (edema: WT outside TC), 2 (core: TC outside
// ET), 3 (enhancing: ET). `channel` picks the modality shown. Throws Error naming the file on write failure.
void write_preview(const std::filesystem::path& png, const transforms::Volume& image, const transforms::LabelVolume& regions, int channel,
                   const std::string& title);

}  // namespace segscale::infer
