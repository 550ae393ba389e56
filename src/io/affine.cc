#include "io/affine.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace segscale {
namespace {

using M3 = std::array<std::array<double, 3>, 3>;

double det3(const M3& a) {
  return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
         a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
}

// Inverse of a 3x3 matrix by cofactors; false if singular.
bool inv3(const M3& a, M3& out) {
  double d = det3(a);
  if (d == 0 || !std::isfinite(d)) return false;
  out[0][0] = (a[1][1] * a[2][2] - a[1][2] * a[2][1]) / d;
  out[0][1] = (a[0][2] * a[2][1] - a[0][1] * a[2][2]) / d;
  out[0][2] = (a[0][1] * a[1][2] - a[0][2] * a[1][1]) / d;
  out[1][0] = (a[1][2] * a[2][0] - a[1][0] * a[2][2]) / d;
  out[1][1] = (a[0][0] * a[2][2] - a[0][2] * a[2][0]) / d;
  out[1][2] = (a[0][2] * a[1][0] - a[0][0] * a[1][2]) / d;
  out[2][0] = (a[1][0] * a[2][1] - a[1][1] * a[2][0]) / d;
  out[2][1] = (a[0][1] * a[2][0] - a[0][0] * a[2][1]) / d;
  out[2][2] = (a[0][0] * a[1][1] - a[0][1] * a[1][0]) / d;
  return true;
}

// Orthogonal polar factor U of A = U P (the orthogonal matrix nearest to A), by Newton's iteration
// X <- (X + X^-T) / 2, which converges quadratically for non-singular A. Equals nibabel's U S V^T -> U V^T.
bool nearest_orthogonal(M3 x, M3& out) {
  for (int it = 0; it < 100; ++it) {
    M3 inv;
    if (!inv3(x, inv)) return false;
    M3 next;
    double delta = 0;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        next[r][c] = 0.5 * (x[r][c] + inv[c][r]);
        delta = std::max(delta, std::abs(next[r][c] - x[r][c]));
      }
    x = next;
    if (delta < 1e-15) break;
  }
  out = x;
  return true;
}

}  // namespace

Affine Affine::diagonal(double sx, double sy, double sz) {
  Affine a;
  a.m[0][0] = sx;
  a.m[1][1] = sy;
  a.m[2][2] = sz;
  return a;
}

Affine Affine::operator*(const Affine& o) const {
  Affine r;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      double s = 0;
      for (int k = 0; k < 4; ++k) s += m[i][k] * o.m[k][j];
      r.m[i][j] = s;
    }
  return r;
}

Affine inverse(const Affine& a) {
  M3 b, bi;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) b[r][c] = a.m[r][c];
  if (!inv3(b, bi)) throw Error("affine: singular 3x3 block, cannot invert");
  Affine out;
  for (int r = 0; r < 3; ++r) {
    double t = 0;
    for (int c = 0; c < 3; ++c) {
      out.m[r][c] = bi[r][c];
      t += bi[r][c] * a.m[c][3];
    }
    out.m[r][3] = -t;
  }
  return out;
}

double max_abs_diff(const Affine& a, const Affine& b) {
  double d = 0;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) d = std::max(d, std::abs(a.m[r][c] - b.m[r][c]));
  return d;
}

std::array<double, 3> voxel_sizes(const Affine& a) {
  std::array<double, 3> s{};
  for (int c = 0; c < 3; ++c) s[c] = std::sqrt(a.m[0][c] * a.m[0][c] + a.m[1][c] * a.m[1][c] + a.m[2][c] * a.m[2][c]);
  return s;
}

std::array<AxisOrientation, 3> io_orientation(const Affine& a) {
  auto zooms = voxel_sizes(a);
  M3 rs;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) rs[r][c] = a.m[r][c] / (zooms[c] == 0 ? 1.0 : zooms[c]);
  M3 rot;
  if (!nearest_orthogonal(rs, rot)) rot = rs;  // degenerate: fall back to the raw direction cosines
  std::array<AxisOrientation, 3> out{{{-1, 0}, {-1, 0}, {-1, 0}}};
  for (int in_ax = 0; in_ax < 3; ++in_ax) {
    int best = -1;
    double best_abs = 1e-8;  // nibabel skips columns that are allclose to zero
    for (int r = 0; r < 3; ++r)
      if (std::abs(rot[r][in_ax]) > best_abs) {
        best_abs = std::abs(rot[r][in_ax]);
        best = r;
      }
    if (best < 0) continue;
    out[in_ax] = {best, rot[best][in_ax] < 0 ? -1 : 1};
    for (int c = 0; c < 3; ++c) rot[best][c] = 0;  // each world axis is claimed once
  }
  return out;
}

std::string axcodes(const Affine& a) {
  static const char kPos[3] = {'R', 'A', 'S'}, kNeg[3] = {'L', 'P', 'I'};
  std::string s;
  for (auto o : io_orientation(a)) s += o.axis < 0 ? '?' : (o.sign > 0 ? kPos[o.axis] : kNeg[o.axis]);
  return s;
}

}  // namespace segscale
