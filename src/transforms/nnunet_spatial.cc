#include "transforms/nnunet_spatial.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "util/half.h"

namespace segscale::transforms {
namespace {

using Mat3 = std::array<std::array<double, 3>, 3>;

Mat3 mul(const Mat3& a, const Mat3& b) {
  Mat3 r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) r[i][j] += a[i][k] * b[k][j];
  return r;
}

// create_affine_matrix_3d: Rz @ Ry @ Rx @ S, in float64.
Mat3 affine(const NnunetSpatialParams& p) {
  const auto& t = p.angles;
  const double z = p.scale ? p.zoom : 1.0;
  const double a = p.rotate ? t[0] : 0, b = p.rotate ? t[1] : 0, c = p.rotate ? t[2] : 0;
  const Mat3 rx{{{1, 0, 0}, {0, std::cos(a), -std::sin(a)}, {0, std::sin(a), std::cos(a)}}};
  const Mat3 ry{{{std::cos(b), 0, std::sin(b)}, {0, 1, 0}, {-std::sin(b), 0, std::cos(b)}}};
  const Mat3 rz{{{std::cos(c), -std::sin(c), 0}, {std::sin(c), std::cos(c), 0}, {0, 0, 1}}};
  const Mat3 s{{{z, 0, 0}, {0, z, 0}, {0, 0, z}}};
  return mul(mul(mul(rz, ry), rx), s);
}

// torch.linspace(start, end, steps) in float32: the first half from start, the second half from end.
std::vector<float> linspace(float start, float end, std::int64_t steps) {
  std::vector<float> v(static_cast<std::size_t>(steps));
  if (steps == 1) {
    v[0] = start;
    return v;
  }
  const float step = (end - start) / static_cast<float>(steps - 1);
  const std::int64_t half = steps / 2;
  for (std::int64_t i = 0; i < steps; ++i)
    v[static_cast<std::size_t>(i)] = i < half ? start + step * static_cast<float>(i) : end - step * static_cast<float>(steps - i - 1);
  return v;
}

// grid_sample's source index for align_corners=False: ((g + 1) * size - 1) / 2.
inline float unnormalise(float g, std::int64_t size) { return ((g + 1.0f) * static_cast<float>(size) - 1.0f) / 2.0f; }

struct Source {
  float iz, iy, ix;  // axes 0, 1, 2 as input indices
};

}  // namespace

void nnunet_spatial(const LoadedPatch& L, const Extent3& patch, const NnunetSpatialParams& p, float* image_out, std::int16_t* seg_out) {
  const Extent3& in = L.shape;
  const Extent3& cs = L.case_shape;
  const int channels = L.channels;
  const std::int64_t ncase = cs[0] * cs[1] * cs[2], nout = patch[0] * patch[1] * patch[2];
  const float* image = L.image;
  const std::int16_t* seg = L.seg;
  constexpr std::int16_t kPad = -1;
  // Box coordinates to the case's voxel index, or -1 outside the case (padding).
  const auto case_index = [&](std::int64_t z, std::int64_t y, std::int64_t x) -> std::int64_t {
    z += L.lbs[0];
    y += L.lbs[1];
    x += L.lbs[2];
    if (z < 0 || y < 0 || x < 0 || z >= cs[0] || y >= cs[1] || x >= cs[2]) return -1;
    return (z * cs[1] + y) * cs[2] + x;
  };
  if (!p.rotate && !p.scale) {  // crop_tensor around floor(S / 2); S >= s, so no padding
    Extent3 start{};
    for (int d = 0; d < 3; ++d) start[d] = std::max<std::int64_t>(0, in[d] / 2 - patch[d] / 2);
    for (std::int64_t i = 0; i < patch[0]; ++i)
      for (std::int64_t j = 0; j < patch[1]; ++j)
        for (std::int64_t k = 0; k < patch[2]; ++k) {
          const std::int64_t src = case_index(start[0] + i, start[1] + j, start[2] + k), dst = (i * patch[1] + j) * patch[2] + k;
          for (int c = 0; c < channels; ++c) image_out[c * nout + dst] = src < 0 ? 0.0f : image[c * ncase + src];
          seg_out[dst] = src < 0 ? kPad : seg[src];
        }
    return;
  }
  // The grid: centred output coordinates times A (float32, as torch.matmul with A.T), divided by S / 2.
  const Mat3 a = affine(p);
  std::array<std::array<float, 3>, 3> af{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) af[i][j] = static_cast<float>(a[i][j]);
  std::array<std::vector<float>, 3> lin;
  for (int d = 0; d < 3; ++d) lin[d] = linspace((1.0f - static_cast<float>(patch[d])) / 2.0f, (static_cast<float>(patch[d]) - 1.0f) / 2.0f, patch[d]);
  std::vector<Source> src(static_cast<std::size_t>(nout));
  float gmin = std::numeric_limits<float>::infinity(), gmax = -gmin;
  std::size_t o = 0;
  for (std::int64_t i = 0; i < patch[0]; ++i)
    for (std::int64_t j = 0; j < patch[1]; ++j)
      for (std::int64_t k = 0; k < patch[2]; ++k, ++o) {
        const float g[3] = {lin[0][static_cast<std::size_t>(i)], lin[1][static_cast<std::size_t>(j)], lin[2][static_cast<std::size_t>(k)]};
        float q[3];
        for (int e = 0; e < 3; ++e) {
          q[e] = g[0] * af[e][0] + g[1] * af[e][1] + g[2] * af[e][2];
          q[e] = q[e] / (static_cast<float>(in[e]) / 2.0f);
          gmin = std::min(gmin, q[e]);
          gmax = std::max(gmax, q[e]);
        }
        src[o] = {unnormalise(q[0], in[0]), unnormalise(q[1], in[1]), unnormalise(q[2], in[2])};
      }
  // The segmentation. The padding label -1 competes only where a kernel may leave the input.
  constexpr float kScale = 1000.0f;
  double bound = 1;
  for (int d = 0; d < 3; ++d) bound = std::min(bound, 1.0 - 1.0 / static_cast<double>(in[d]));
  const bool may_reach_outside = !(-static_cast<double>(gmin) <= bound && static_cast<double>(gmax) <= bound);
  // The channel's labels, sorted (a presence table over int16 instead of sorting the volume).
  std::vector<std::uint8_t> present(65536, 0);
  Extent3 lo{}, hi{};
  bool box_leaves_case = false;
  for (int d = 0; d < 3; ++d) {
    lo[d] = std::clamp<std::int64_t>(L.lbs[d], 0, cs[d]);
    hi[d] = std::clamp<std::int64_t>(L.lbs[d] + in[d], 0, cs[d]);
    box_leaves_case |= L.lbs[d] < 0 || L.lbs[d] + in[d] > cs[d];
  }
  for (std::int64_t z = lo[0]; z < hi[0]; ++z)
    for (std::int64_t y = lo[1]; y < hi[1]; ++y) {
      const std::int16_t* row = seg + (z * cs[1] + y) * cs[2];
      for (std::int64_t x = lo[2]; x < hi[2]; ++x) present[static_cast<std::uint16_t>(row[x] + 32768)] = 1;
    }
  if (may_reach_outside || box_leaves_case) present[static_cast<std::uint16_t>(kPad + 32768)] = 1;
  std::vector<std::int16_t> labels;
  for (int v = 0; v < 65536; ++v)
    if (present[static_cast<std::size_t>(v)]) labels.push_back(static_cast<std::int16_t>(v - 32768));
  // One pass over the output: each voxel's eight taps (torch's weights and order) serve every image channel and
  // every label's score. A label's score is the sum of 1000 x weight over the in-bounds taps holding it, in tap
  // order: the same float operations as grid_sample over its 0/1000 indicator, whose zero terms add nothing.
  // The padding label's score is 1000 minus that sum over the taps not holding it (grid_sample of ind - 1).
  const std::size_t nl = labels.size();
  std::vector<float> score(nl);
  for (std::int64_t o2 = 0; o2 < nout; ++o2) {
    const Source& sc = src[static_cast<std::size_t>(o2)];
    const float ix = sc.ix, iy = sc.iy, iz = sc.iz;
    const std::int64_t x0 = static_cast<std::int64_t>(std::floor(ix)), y0 = static_cast<std::int64_t>(std::floor(iy)),
                       z0 = static_cast<std::int64_t>(std::floor(iz));
    const float fx0 = static_cast<float>(x0), fy0 = static_cast<float>(y0), fz0 = static_cast<float>(z0);
    const float fx1 = fx0 + 1, fy1 = fy0 + 1, fz1 = fz0 + 1;
    const float w[8] = {(fx1 - ix) * (fy1 - iy) * (fz1 - iz), (ix - fx0) * (fy1 - iy) * (fz1 - iz), (fx1 - ix) * (iy - fy0) * (fz1 - iz),
                        (ix - fx0) * (iy - fy0) * (fz1 - iz), (fx1 - ix) * (fy1 - iy) * (iz - fz0), (ix - fx0) * (fy1 - iy) * (iz - fz0),
                        (fx1 - ix) * (iy - fy0) * (iz - fz0), (ix - fx0) * (iy - fy0) * (iz - fz0)};
    std::int64_t idx[8];
    bool ok[8];
    const std::int64_t cz = z0 + L.lbs[0], cy = y0 + L.lbs[1], cx = x0 + L.lbs[2];
    if (z0 >= 0 && y0 >= 0 && x0 >= 0 && z0 + 1 < in[0] && y0 + 1 < in[1] && x0 + 1 < in[2] && cz >= 0 && cy >= 0 && cx >= 0 &&
        cz + 1 < cs[0] && cy + 1 < cs[1] && cx + 1 < cs[2]) {  // the whole cell inside the box and the case
      const std::int64_t base = (cz * cs[1] + cy) * cs[2] + cx, sy = cs[2], sz = cs[1] * cs[2];
      const std::int64_t off[8] = {0, 1, sy, sy + 1, sz, sz + 1, sz + sy, sz + sy + 1};
      for (int t = 0; t < 8; ++t) {
        ok[t] = true;
        idx[t] = base + off[t];
      }
    } else {
      for (int t = 0; t < 8; ++t) {
        const std::int64_t x = x0 + (t & 1), y = y0 + ((t >> 1) & 1), z = z0 + ((t >> 2) & 1);
        ok[t] = z >= 0 && y >= 0 && x >= 0 && z < in[0] && y < in[1] && x < in[2];
        idx[t] = ok[t] ? case_index(z, y, x) : -1;  // in the box but outside the case: padding (0, -1)
      }
    }
    for (int c = 0; c < channels; ++c) {
      const float* v = image + c * ncase;
      float acc = 0;
      for (int t = 0; t < 8; ++t)
        if (ok[t]) acc += (idx[t] < 0 ? 0.0f : v[idx[t]]) * w[t];
      image_out[c * nout + o2] = acc;
    }
    if (nl == 1) {
      seg_out[o2] = labels[0];
      continue;
    }
    // grid_sample nearest of (seg - pad), zeros padding, + pad: nearbyint as torch rounds on CPU.
    const std::int64_t nz = static_cast<std::int64_t>(std::nearbyint(iz)), ny = static_cast<std::int64_t>(std::nearbyint(iy)),
                       nx = static_cast<std::int64_t>(std::nearbyint(ix));
    const bool inside = nz >= 0 && ny >= 0 && nx >= 0 && nz < in[0] && ny < in[1] && nx < in[2];
    const std::int64_t nidx = inside ? case_index(nz, ny, nx) : -1;
    const std::int16_t nn = nidx < 0 ? kPad : seg[nidx];
    std::int16_t tap_label[8];
    bool uniform = true;
    for (int t = 0; t < 8; ++t) {
      tap_label[t] = ok[t] && idx[t] >= 0 ? seg[idx[t]] : kPad;
      uniform &= ok[t] && tap_label[t] == tap_label[0];
    }
    // All eight taps inside the box with one label u: u scores about 1000 (float16 1000), every other label 0 (the
    // padding label about 0), and the nearest neighbour, one of the taps, is u: u wins, as the full comparison
    // below would decide.
    if (uniform) {
      seg_out[o2] = tap_label[0];
      continue;
    }
    std::int16_t winner = labels[0];
    float best = 0, nn_score = -std::numeric_limits<float>::infinity();
    for (std::size_t l = (nl == 2 ? 1 : 0); l < nl; ++l) {
      const std::int16_t u = labels[l];
      float v = 0;
      if (may_reach_outside && u == kPad) {
        for (int t = 0; t < 8; ++t)
          if (ok[t] && tap_label[t] != kPad) v += -kScale * w[t];
        v += kScale;
      } else {
        for (int t = 0; t < 8; ++t)
          if (ok[t] && tap_label[t] == u) v += kScale * w[t];
      }
      v = half_to_float(float_to_half(v));  // scores are compared as float16
      if (nl == 2) {  // the second label wins above half the scale; the nearest neighbour settles a tie
        winner = v == kScale / 2 ? nn : (v > kScale / 2 ? labels[1] : labels[0]);
        break;
      }
      if (u == nn) nn_score = v;
      if (l == 0 || v > best) {  // ties stay with the earlier label
        best = l == 0 ? v : std::max(best, v);
        winner = u;
      }
    }
    if (nl > 2 && nn_score == best) winner = nn;  // the nearest neighbour settles every tie it is part of
    seg_out[o2] = winner;
  }
}

}  // namespace segscale::transforms
