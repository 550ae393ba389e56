#pragma once
// Spacingd(pixdim, mode=(bilinear, nearest)) as MONAI 1.4.0 computes it (spec section 3.5): keep the
// direction cosines, replace the zooms, output shape from the corner voxel centres with round-half-even,
// origin at the corner that is first along every output axis, pull resampling with border clamping in
// float64, float32 out.
#include <array>

#include "transforms/volume.h"

namespace segscale::transforms {

struct SpacingPlan {
  Shape3 in_size{};
  Shape3 out_size{};
  Affine out_affine;   // B: output voxel -> world
  Affine index_map;    // T = A^-1 B: output voxel index -> input voxel index (voxel centres at integers)
  bool identity = false;  // MONAI's shortcut: T is the identity (to 1e-3) and the shape unchanged
};

// The output grid for an input of `in_size` voxels with affine `in_affine`, resampled to `pixdim` mm.
// An axis whose spacing is already within 1e-3 mm of the target keeps its spacing. Throws Error for a
// singular affine or non-positive pixdim.
SpacingPlan plan_spacing(const Shape3& in_size, const Affine& in_affine, const std::array<double, 3>& pixdim);

// A box of output voxels [start, start + size) per axis; the whole grid by default.
struct Window {
  Shape3 start{0, 0, 0};
  Shape3 size{-1, -1, -1};
};

// Trilinear resampling of every channel onto the plan's grid, or only onto `window` of it (the result then
// has the window's size and an affine translated to its first voxel). Values are identical to computing
// the whole grid and cropping.
Volume resample_bilinear(const Volume& in, const SpacingPlan& plan, const Window& window = {}, int threads = 1);

// Nearest-neighbour resampling (round half to even on the clamped coordinate), for label maps.
LabelVolume resample_nearest(const LabelVolume& in, const SpacingPlan& plan, const Window& window = {});

}  // namespace segscale::transforms
