#pragma once
// One picture to check a segmentation at a glance: axial, coronal and sagittal slices through the tumour
// centre, the scan in grey, edema / core / enhancing tumour tinted green / yellow / red, and a legend.
#include <filesystem>
#include <string>

#include "transforms/volume.h"

namespace segscale::infer {

// The scan the picture is made from, so that slice numbers are given in its own voxel indices (as ITK-SNAP or
// 3D Slicer show them), not in the resampled grid's.
struct ScanGrid {
  transforms::Shape3 size{};
  Affine affine;
};

// `image` and `regions` share one RAS grid; regions hold 0 (none), 1 (edema: WT outside TC), 2 (core: TC outside
// ET), 3 (enhancing: ET). `channel` picks the modality shown. Each panel is labelled with the scan's voxel axis
// (i, j, k) nearest to the panel's normal and the 0-based index of the shown slice on it, e.g. "AXIAL k=77/155".
// Throws Error naming the file on write failure.
void write_preview(const std::filesystem::path& png, const transforms::Volume& image, const transforms::LabelVolume& regions, int channel,
                   const std::string& title, const ScanGrid& scan);

}  // namespace segscale::infer
