#pragma once
// Orientationd, RandSpatialCropd / CenterSpatialCropd slicing, and RandFlipd's flip: pure voxel moves that
// carry the affine along exactly as MONAI 1.4.0 does (spec sections 4-6).
#include <string>

#include "transforms/volume.h"

namespace segscale::transforms {

struct OrientationPlan {
  std::array<int, 3> perm{0, 1, 2};        // output axis a reads input axis perm[a]
  std::array<bool, 3> flip{false, false, false};  // ... reversed
  Shape3 out_size{};
  Affine out_affine;
  bool identity = true;
};

// The permutation and flips that bring a grid with `affine` to `axcodes` (e.g. "RAS"), using nibabel's
// io_orientation (oblique affines snapped to the nearest orthogonal matrix). Throws Error for malformed
// codes or a degenerate affine.
OrientationPlan plan_orientation(const Shape3& size, const Affine& affine, const std::string& axcodes);

template <typename T>
Grid<T> apply_orientation(const Grid<T>& in, const OrientationPlan& plan);

// Copies the box [start, start + size) of every channel; the affine moves to the box's first voxel.
template <typename T>
Grid<T> crop(const Grid<T>& in, const Shape3& start, const Shape3& size);

// Reverses spatial axis `axis` (0 = x) in place; the affine is updated so world positions are unchanged.
template <typename T>
void flip_axis(Grid<T>& g, int axis);

// MONAI's crop window for roi on an axis of n voxels: the whole axis when n <= roi.
inline std::int64_t crop_extent(std::int64_t n, std::int64_t roi) { return n > roi ? roi : n; }

// MONAI's CenterSpatialCrop window: per axis, extent crop_extent(n, roi) starting at n / 2 - extent / 2.
struct Box {
  Shape3 start{}, size{};
};
inline Box center_box(const Shape3& n, const Shape3& roi) {
  Box b;
  for (int a = 0; a < 3; ++a) {
    b.size[a] = crop_extent(n[a], roi[a]);
    b.start[a] = n[a] / 2 - b.size[a] / 2;
  }
  return b;
}

}  // namespace segscale::transforms
