#include "transforms/spacing.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "util/error.h"
#include "util/parallel.h"

namespace segscale::transforms {
namespace {

using M3 = std::array<std::array<double, 3>, 3>;

// Upper-triangular Z with positive diagonal and Z^T Z = S (S symmetric positive definite): the transpose
// of the lower Cholesky factor, as numpy's cholesky(S).T gives.
M3 cholesky_upper(const M3& s) {
  M3 l{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j <= i; ++j) {
      double sum = s[i][j];
      for (int k = 0; k < j; ++k) sum -= l[i][k] * l[j][k];
      if (i == j) {
        if (!(sum > 0)) throw Error("spacing: the image affine is singular (zero or collinear voxel axes)");
        l[i][i] = std::sqrt(sum);
      } else {
        l[i][j] = sum / l[j][j];
      }
    }
  M3 z{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) z[i][j] = l[j][i];
  return z;
}

M3 inverse_upper(const M3& z) {
  M3 inv{};
  for (int i = 2; i >= 0; --i) {
    inv[i][i] = 1.0 / z[i][i];
    for (int j = i + 1; j < 3; ++j) {
      double s = 0;
      for (int k = i + 1; k <= j; ++k) s += z[i][k] * inv[k][j];
      inv[i][j] = -s / z[i][i];
    }
  }
  return inv;
}

// Per output index along one axis: the two input neighbours and the weight of the second, for an
// axis-aligned map p = scale * i + offset clamped to [0, n-1] (border padding).
struct AxisTaps {
  std::vector<std::int64_t> i0, i1;
  std::vector<double> w1;
  std::vector<std::int64_t> nearest;
};

AxisTaps axis_taps(double scale, double offset, std::int64_t n_in, std::int64_t start, std::int64_t count) {
  AxisTaps t;
  t.i0.resize(count);
  t.i1.resize(count);
  t.w1.resize(count);
  t.nearest.resize(count);
  const double hi = static_cast<double>(n_in - 1);
  for (std::int64_t k = 0; k < count; ++k) {
    double p = scale * static_cast<double>(start + k) + offset;
    p = std::min(std::max(p, 0.0), hi);
    double f = std::floor(p);
    t.i0[k] = static_cast<std::int64_t>(f);
    t.i1[k] = std::min(t.i0[k] + 1, n_in - 1);
    t.w1[k] = p - f;
    t.nearest[k] = static_cast<std::int64_t>(std::nearbyint(p));
  }
  return t;
}

bool axis_aligned(const Affine& t) {
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      if (r != c && t(r, c) != 0.0) return false;
  return true;
}

Window resolve(const Window& w, const Shape3& out) {
  Window r = w;
  for (int a = 0; a < 3; ++a) {
    if (r.size[a] < 0) {
      r.start[a] = 0;
      r.size[a] = out[a];
    }
    if (r.start[a] < 0 || r.start[a] + r.size[a] > out[a]) throw Error("spacing: window outside the output grid");
  }
  return r;
}

Affine window_affine(const Affine& b, const Shape3& start) {
  Affine a = b;
  for (int r = 0; r < 3; ++r) a(r, 3) = b(r, 3) + b(r, 0) * start[0] + b(r, 1) * start[1] + b(r, 2) * start[2];
  return a;
}

// The input coordinate of output voxel (i, j, k) under the general (oblique) map, clamped.
inline void map_point(const Affine& t, double i, double j, double k, const Shape3& n, double p[3]) {
  for (int r = 0; r < 3; ++r) {
    double v = t(r, 0) * i + t(r, 1) * j + t(r, 2) * k + t(r, 3);
    p[r] = std::min(std::max(v, 0.0), static_cast<double>(n[r] - 1));
  }
}

}  // namespace

SpacingPlan plan_spacing(const Shape3& in_size, const Affine& a, const std::array<double, 3>& pixdim) {
  for (double p : pixdim)
    if (!(p > 0) || !std::isfinite(p)) throw Error(fmt::format("spacing: pixdim must be positive, got {}", p));
  SpacingPlan plan;
  plan.in_size = in_size;
  M3 m;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) m[r][c] = a(r, c);
  // Target spacing: keep an axis's own spacing when within AFFINE_TOL of the target.
  auto s_in = voxel_sizes(a);
  std::array<double, 3> s_out{};
  for (int j = 0; j < 3; ++j) {
    double sj = s_in[j] == 0 ? 1.0 : s_in[j];
    s_out[j] = (pixdim[j] - 1e-3 <= sj && sj <= pixdim[j] + 1e-3) ? sj : pixdim[j];
  }
  // B3 = R diag(s_out) with M = R Z (Z from the Cholesky factor of M^T M): the directions kept, shear dropped.
  M3 mtm{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) mtm[i][j] += m[k][i] * m[k][j];
  M3 zi = inverse_upper(cholesky_upper(mtm));
  Affine b;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) {
      double rot = 0;
      for (int k = 0; k < 3; ++k) rot += m[r][k] * zi[k][c];
      b(r, c) = rot * s_out[c];  // sign(diag Z) is +1 for a Cholesky factor
    }
  // Output shape and origin from the 8 corner voxel centres (MONAI's compute_shape_offset).
  Affine binv_a = inverse(b) * a;  // b has zero translation here, as MONAI's zoom_affine
  double corners[8][3], out[8][3], world[8][3];
  for (int ci = 0; ci < 8; ++ci) {
    // numpy meshgrid 'ij' order: the last axis varies fastest
    corners[ci][0] = (ci >> 2) & 1 ? static_cast<double>(in_size[0] - 1) : 0.0;
    corners[ci][1] = (ci >> 1) & 1 ? static_cast<double>(in_size[1] - 1) : 0.0;
    corners[ci][2] = ci & 1 ? static_cast<double>(in_size[2] - 1) : 0.0;
    for (int r = 0; r < 3; ++r) {
      out[ci][r] = binv_a(r, 0) * corners[ci][0] + binv_a(r, 1) * corners[ci][1] + binv_a(r, 2) * corners[ci][2] + binv_a(r, 3);
      world[ci][r] = a(r, 0) * corners[ci][0] + a(r, 1) * corners[ci][1] + a(r, 2) * corners[ci][2] + a(r, 3);
    }
  }
  for (int r = 0; r < 3; ++r) {
    double lo = out[0][r], hi = out[0][r];
    for (int ci = 1; ci < 8; ++ci) {
      lo = std::min(lo, out[ci][r]);
      hi = std::max(hi, out[ci][r]);
    }
    plan.out_size[r] = static_cast<std::int64_t>(std::nearbyint(hi - lo + 1.0));  // round half to even, as numpy
    if (plan.out_size[r] < 1) plan.out_size[r] = 1;
  }
  int origin = -1;
  for (int ci = 0; ci < 8 && origin < 0; ++ci) {
    bool minimal = true;
    for (int r = 0; r < 3; ++r) {
      double m_r = 0;
      for (int cj = 0; cj < 8; ++cj) m_r = std::min(m_r, out[cj][r] - out[ci][r]);
      if (std::abs(m_r) > 1e-8) minimal = false;  // numpy allclose(x, 0): atol 1e-8
    }
    if (minimal) origin = ci;
  }
  for (int r = 0; r < 3; ++r) {
    if (origin >= 0) {
      b(r, 3) = world[origin][r];
    } else {  // genuinely oblique: centre-align the grids
      double t = a(r, 3);
      for (int c = 0; c < 3; ++c) t += a(r, c) * static_cast<double>(in_size[c]) / 2.0 - b(r, c) * static_cast<double>(plan.out_size[c]) / 2.0;
      b(r, 3) = t;
    }
  }
  plan.out_affine = b;
  plan.index_map = inverse(a) * b;
  plan.identity = plan.out_size == in_size && max_abs_diff(plan.index_map, Affine::identity()) <= 1e-3;
  return plan;
}

Volume resample_bilinear(const Volume& in, const SpacingPlan& plan, const Window& window, int threads) {
  const Window w = resolve(window, plan.out_size);
  Volume out = Volume::make(in.channels, w.size, window_affine(plan.out_affine, w.start));
  const Shape3 n = in.size;
  const std::int64_t NY = n[1], NZ = n[2];
  const Affine& t = plan.index_map;
  if (plan.identity) {  // MONAI skips resampling: values pass through unchanged
    for (std::int64_t c = 0; c < in.channels; ++c)
      for (std::int64_t i = 0; i < w.size[0]; ++i)
        for (std::int64_t j = 0; j < w.size[1]; ++j)
          for (std::int64_t k = 0; k < w.size[2]; ++k)
            out.channel(c)[(i * w.size[1] + j) * w.size[2] + k] =
                in.channel(c)[((i + w.start[0]) * NY + (j + w.start[1])) * NZ + (k + w.start[2])];
    return out;
  }
  if (axis_aligned(t)) {
    // Separable: per-axis taps, then 8 reads and weights per output voxel. Same arithmetic as the general path.
    AxisTaps tx = axis_taps(t(0, 0), t(0, 3), n[0], w.start[0], w.size[0]);
    AxisTaps ty = axis_taps(t(1, 1), t(1, 3), n[1], w.start[1], w.size[1]);
    AxisTaps tz = axis_taps(t(2, 2), t(2, 3), n[2], w.start[2], w.size[2]);
    const std::int64_t rows = in.channels * w.size[0];
    parallel_for(static_cast<std::size_t>(rows), threads, [&](std::size_t row) {
      const std::int64_t c = static_cast<std::int64_t>(row) / w.size[0], i = static_cast<std::int64_t>(row) % w.size[0];
      const float* src = in.channel(c);
      float* dst = out.channel(c) + i * w.size[1] * w.size[2];
      const double wx1 = tx.w1[i], wx0 = 1.0 - wx1;
      const float* px0 = src + tx.i0[i] * NY * NZ;
      const float* px1 = src + tx.i1[i] * NY * NZ;
      for (std::int64_t j = 0; j < w.size[1]; ++j) {
        const double wy1 = ty.w1[j], wy0 = 1.0 - wy1;
        const float* p00 = px0 + ty.i0[j] * NZ;
        const float* p01 = px0 + ty.i1[j] * NZ;
        const float* p10 = px1 + ty.i0[j] * NZ;
        const float* p11 = px1 + ty.i1[j] * NZ;
        const double w00 = wx0 * wy0, w01 = wx0 * wy1, w10 = wx1 * wy0, w11 = wx1 * wy1;
        for (std::int64_t k = 0; k < w.size[2]; ++k) {
          const std::int64_t z0 = tz.i0[k], z1 = tz.i1[k];
          const double wz1 = tz.w1[k], wz0 = 1.0 - wz1;
          double v = w00 * wz0 * p00[z0] + w00 * wz1 * p00[z1] + w01 * wz0 * p01[z0] + w01 * wz1 * p01[z1] +
                     w10 * wz0 * p10[z0] + w10 * wz1 * p10[z1] + w11 * wz0 * p11[z0] + w11 * wz1 * p11[z1];
          dst[j * w.size[2] + k] = static_cast<float>(v);
        }
      }
    });
    return out;
  }
  const std::int64_t rows = in.channels * w.size[0];
  parallel_for(static_cast<std::size_t>(rows), threads, [&](std::size_t row) {
    const std::int64_t c = static_cast<std::int64_t>(row) / w.size[0], i = static_cast<std::int64_t>(row) % w.size[0];
    const float* src = in.channel(c);
    float* dst = out.channel(c) + i * w.size[1] * w.size[2];
    for (std::int64_t j = 0; j < w.size[1]; ++j)
      for (std::int64_t k = 0; k < w.size[2]; ++k) {
        double p[3];
        map_point(t, static_cast<double>(i + w.start[0]), static_cast<double>(j + w.start[1]), static_cast<double>(k + w.start[2]), n, p);
        std::int64_t x0 = static_cast<std::int64_t>(std::floor(p[0])), y0 = static_cast<std::int64_t>(std::floor(p[1])),
                     z0 = static_cast<std::int64_t>(std::floor(p[2]));
        std::int64_t x1 = std::min(x0 + 1, n[0] - 1), y1 = std::min(y0 + 1, n[1] - 1), z1 = std::min(z0 + 1, n[2] - 1);
        double wx1 = p[0] - static_cast<double>(x0), wy1 = p[1] - static_cast<double>(y0), wz1 = p[2] - static_cast<double>(z0);
        double wx0 = 1.0 - wx1, wy0 = 1.0 - wy1, wz0 = 1.0 - wz1;
        auto at = [&](std::int64_t x, std::int64_t y, std::int64_t z) { return static_cast<double>(src[(x * NY + y) * NZ + z]); };
        double w00 = wx0 * wy0, w01 = wx0 * wy1, w10 = wx1 * wy0, w11 = wx1 * wy1;
        double v = w00 * wz0 * at(x0, y0, z0) + w00 * wz1 * at(x0, y0, z1) + w01 * wz0 * at(x0, y1, z0) + w01 * wz1 * at(x0, y1, z1) +
                   w10 * wz0 * at(x1, y0, z0) + w10 * wz1 * at(x1, y0, z1) + w11 * wz0 * at(x1, y1, z0) + w11 * wz1 * at(x1, y1, z1);
        dst[j * w.size[2] + k] = static_cast<float>(v);
      }
  });
  return out;
}

LabelVolume resample_nearest(const LabelVolume& in, const SpacingPlan& plan, const Window& window) {
  const Window w = resolve(window, plan.out_size);
  LabelVolume out = LabelVolume::make(in.channels, w.size, window_affine(plan.out_affine, w.start));
  const Shape3 n = in.size;
  const Affine& t = plan.index_map;
  const bool aligned = plan.identity || axis_aligned(t);
  AxisTaps tx, ty, tz;
  if (aligned) {
    const Affine& m = plan.identity ? Affine::identity() : t;
    tx = axis_taps(m(0, 0), m(0, 3), n[0], w.start[0], w.size[0]);
    ty = axis_taps(m(1, 1), m(1, 3), n[1], w.start[1], w.size[1]);
    tz = axis_taps(m(2, 2), m(2, 3), n[2], w.start[2], w.size[2]);
  }
  for (std::int64_t c = 0; c < in.channels; ++c) {
    const std::uint8_t* src = in.channel(c);
    std::uint8_t* dst = out.channel(c);
    for (std::int64_t i = 0; i < w.size[0]; ++i)
      for (std::int64_t j = 0; j < w.size[1]; ++j)
        for (std::int64_t k = 0; k < w.size[2]; ++k) {
          std::int64_t x, y, z;
          if (aligned) {
            x = tx.nearest[i];
            y = ty.nearest[j];
            z = tz.nearest[k];
          } else {
            double p[3];
            map_point(t, static_cast<double>(i + w.start[0]), static_cast<double>(j + w.start[1]), static_cast<double>(k + w.start[2]), n, p);
            x = static_cast<std::int64_t>(std::nearbyint(p[0]));
            y = static_cast<std::int64_t>(std::nearbyint(p[1]));
            z = static_cast<std::int64_t>(std::nearbyint(p[2]));
          }
          dst[(i * w.size[1] + j) * w.size[2] + k] = src[(x * n[1] + y) * n[2] + z];
        }
  }
  return out;
}

}  // namespace segscale::transforms
