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

// torch's trilinear grid_sample of one volume at one point, zeros padding, its weights and sum order.
template <typename Get>
float trilinear(const Source& s, const Extent3& in, Get&& at) {
  const float ix = s.ix, iy = s.iy, iz = s.iz;
  const std::int64_t x0 = static_cast<std::int64_t>(std::floor(ix)), y0 = static_cast<std::int64_t>(std::floor(iy)),
                     z0 = static_cast<std::int64_t>(std::floor(iz));
  const std::int64_t x1 = x0 + 1, y1 = y0 + 1, z1 = z0 + 1;
  const float fx0 = static_cast<float>(x0), fy0 = static_cast<float>(y0), fz0 = static_cast<float>(z0);
  const float fx1 = static_cast<float>(x1), fy1 = static_cast<float>(y1), fz1 = static_cast<float>(z1);
  const float tnw = (fx1 - ix) * (fy1 - iy) * (fz1 - iz), tne = (ix - fx0) * (fy1 - iy) * (fz1 - iz);
  const float tsw = (fx1 - ix) * (iy - fy0) * (fz1 - iz), tse = (ix - fx0) * (iy - fy0) * (fz1 - iz);
  const float bnw = (fx1 - ix) * (fy1 - iy) * (iz - fz0), bne = (ix - fx0) * (fy1 - iy) * (iz - fz0);
  const float bsw = (fx1 - ix) * (iy - fy0) * (iz - fz0), bse = (ix - fx0) * (iy - fy0) * (iz - fz0);
  const auto in_bounds = [&](std::int64_t z, std::int64_t y, std::int64_t x) { return z >= 0 && y >= 0 && x >= 0 && z < in[0] && y < in[1] && x < in[2]; };
  float out = 0;
  if (in_bounds(z0, y0, x0)) out += at(z0, y0, x0) * tnw;
  if (in_bounds(z0, y0, x1)) out += at(z0, y0, x1) * tne;
  if (in_bounds(z0, y1, x0)) out += at(z0, y1, x0) * tsw;
  if (in_bounds(z0, y1, x1)) out += at(z0, y1, x1) * tse;
  if (in_bounds(z1, y0, x0)) out += at(z1, y0, x0) * bnw;
  if (in_bounds(z1, y0, x1)) out += at(z1, y0, x1) * bne;
  if (in_bounds(z1, y1, x0)) out += at(z1, y1, x0) * bsw;
  if (in_bounds(z1, y1, x1)) out += at(z1, y1, x1) * bse;
  return out;
}

}  // namespace

void nnunet_spatial(const float* image, int channels, const std::int16_t* seg, const Extent3& in, const Extent3& patch,
                    const NnunetSpatialParams& p, float* image_out, std::int16_t* seg_out) {
  const std::int64_t nin = in[0] * in[1] * in[2], nout = patch[0] * patch[1] * patch[2];
  if (!p.rotate && !p.scale) {  // crop_tensor around floor(S / 2); S >= s, so no padding
    Extent3 start{};
    for (int d = 0; d < 3; ++d) start[d] = std::max<std::int64_t>(0, in[d] / 2 - patch[d] / 2);
    for (int c = 0; c < channels + 1; ++c)
      for (std::int64_t i = 0; i < patch[0]; ++i)
        for (std::int64_t j = 0; j < patch[1]; ++j)
          for (std::int64_t k = 0; k < patch[2]; ++k) {
            const std::int64_t src = ((start[0] + i) * in[1] + start[1] + j) * in[2] + start[2] + k, dst = (i * patch[1] + j) * patch[2] + k;
            if (c < channels) image_out[c * nout + dst] = image[c * nin + src];
            else seg_out[dst] = seg[src];
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
  std::vector<float> nearest_ok;
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
  for (int c = 0; c < channels; ++c) {
    const float* v = image + c * nin;
    const auto at = [&](std::int64_t z, std::int64_t y, std::int64_t x) { return v[(z * in[1] + y) * in[2] + x]; };
    for (std::int64_t i = 0; i < nout; ++i) image_out[c * nout + i] = trilinear(src[static_cast<std::size_t>(i)], in, at);
  }
  // The segmentation. The padding label -1 competes only where a kernel may leave the input.
  constexpr std::int16_t kPad = -1;
  constexpr float kScale = 1000.0f;
  double bound = 1;
  for (int d = 0; d < 3; ++d) bound = std::min(bound, 1.0 - 1.0 / static_cast<double>(in[d]));
  const bool may_reach_outside = !(-static_cast<double>(gmin) <= bound && static_cast<double>(gmax) <= bound);
  std::vector<std::int16_t> labels(seg, seg + nin);
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  if (may_reach_outside && !std::binary_search(labels.begin(), labels.end(), kPad)) labels.insert(std::lower_bound(labels.begin(), labels.end(), kPad), kPad);
  if (labels.size() == 1) {
    std::fill(seg_out, seg_out + nout, labels[0]);
    return;
  }
  // grid_sample nearest of (seg - pad), zeros padding, + pad; nearbyint as torch rounds on CPU.
  std::vector<std::int16_t> nn(static_cast<std::size_t>(nout));
  for (std::int64_t i = 0; i < nout; ++i) {
    const Source& s = src[static_cast<std::size_t>(i)];
    const std::int64_t z = static_cast<std::int64_t>(std::nearbyint(s.iz)), y = static_cast<std::int64_t>(std::nearbyint(s.iy)),
                       x = static_cast<std::int64_t>(std::nearbyint(s.ix));
    const bool inside = z >= 0 && y >= 0 && x >= 0 && z < in[0] && y < in[1] && x < in[2];
    nn[static_cast<std::size_t>(i)] = inside ? seg[(z * in[1] + y) * in[2] + x] : kPad;
  }
  const auto score = [&](std::int16_t u, std::vector<std::uint16_t>& out) {
    const bool pad = may_reach_outside && u == kPad;
    std::vector<float> ind(static_cast<std::size_t>(nin));
    for (std::int64_t i = 0; i < nin; ++i) ind[static_cast<std::size_t>(i)] = ((seg[i] == u ? 1.0f : 0.0f) - (pad ? 1.0f : 0.0f)) * kScale;
    const auto at = [&](std::int64_t z, std::int64_t y, std::int64_t x) { return ind[static_cast<std::size_t>((z * in[1] + y) * in[2] + x)]; };
    for (std::int64_t i = 0; i < nout; ++i) {
      float v = trilinear(src[static_cast<std::size_t>(i)], in, at);
      if (pad) v += kScale;
      out[static_cast<std::size_t>(i)] = float_to_half(v);
    }
  };
  const auto hf = [](std::uint16_t h) { return half_to_float(h); };
  std::vector<std::uint16_t> cur(static_cast<std::size_t>(nout));
  if (labels.size() == 2) {  // the second label wins above half the scale; the nearest neighbour settles a tie
    score(labels[1], cur);
    for (std::int64_t i = 0; i < nout; ++i) {
      const float h = hf(cur[static_cast<std::size_t>(i)]);
      seg_out[i] = h == kScale / 2 ? nn[static_cast<std::size_t>(i)] : (h > kScale / 2 ? labels[1] : labels[0]);
    }
    return;
  }
  std::vector<float> best(static_cast<std::size_t>(nout)), nn_score(static_cast<std::size_t>(nout), -std::numeric_limits<float>::infinity());
  for (std::size_t l = 0; l < labels.size(); ++l) {
    const std::int16_t u = labels[l];
    score(u, cur);
    for (std::int64_t i = 0; i < nout; ++i) {
      const float v = hf(cur[static_cast<std::size_t>(i)]);
      const auto si = static_cast<std::size_t>(i);
      if (nn[si] == u) nn_score[si] = v;
      if (l == 0 || v > best[si]) {
        best[si] = l == 0 ? v : std::max(best[si], v);
        seg_out[i] = u;
      }
    }
  }
  for (std::int64_t i = 0; i < nout; ++i)
    if (nn_score[static_cast<std::size_t>(i)] == best[static_cast<std::size_t>(i)]) seg_out[i] = nn[static_cast<std::size_t>(i)];
}

}  // namespace segscale::transforms
