#pragma once
// 4x4 voxel-to-world affines (float64, row-major, world in RAS+ mm as NIfTI and nibabel define it) and the
// orientation facts nibabel derives from them.
#include <array>
#include <string>

namespace segscale {

struct Affine {
  std::array<std::array<double, 4>, 4> m{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}};

  static Affine identity() { return Affine{}; }
  static Affine diagonal(double sx, double sy, double sz);
  double operator()(int r, int c) const { return m[r][c]; }
  double& operator()(int r, int c) { return m[r][c]; }
  Affine operator*(const Affine& o) const;
  bool operator==(const Affine& o) const = default;
};

// Inverse of an affine whose last row is (0,0,0,1). Throws Error if the 3x3 block is singular.
Affine inverse(const Affine& a);

// Largest absolute elementwise difference.
double max_abs_diff(const Affine& a, const Affine& b);

// Column norms of the 3x3 block: the voxel size in mm along each voxel axis.
std::array<double, 3> voxel_sizes(const Affine& a);

// nibabel's io_orientation: for each voxel axis, the world axis (0=x/LR, 1=y/PA, 2=z/IS) it most closely
// follows and its direction (+1 or -1). Oblique matrices are first snapped to the nearest orthogonal
// matrix; ties are resolved in axis order, as nibabel does. axis = -1 for a degenerate (zero) column.
struct AxisOrientation {
  int axis;
  int sign;
};
std::array<AxisOrientation, 3> io_orientation(const Affine& a);

// Orientation codes as nibabel's aff2axcodes with RAS labels, e.g. "RAS", "LPS"; '?' for a degenerate axis.
std::string axcodes(const Affine& a);

}  // namespace segscale
