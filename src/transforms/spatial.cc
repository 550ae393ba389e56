#include "transforms/spatial.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"

namespace segscale::transforms {

OrientationPlan plan_orientation(const Shape3& size, const Affine& affine, const std::string& codes) {
  if (codes.size() != 3) throw Error("orientation: axcodes must have 3 letters, got '" + codes + "'");
  std::array<int, 3> want_axis{}, want_sign{};
  std::array<bool, 3> seen{};
  for (int a = 0; a < 3; ++a) {
    const char ch = static_cast<char>(std::toupper(static_cast<unsigned char>(codes[a])));
    const char* pos = "RAS";
    const char* neg = "LPI";
    int w = -1, s = 0;
    for (int k = 0; k < 3; ++k) {
      if (ch == pos[k]) w = k, s = 1;
      if (ch == neg[k]) w = k, s = -1;
    }
    if (w < 0 || seen[w]) throw Error("orientation: invalid axcodes '" + codes + "' (one of R/L, A/P, S/I each)");
    seen[w] = true;
    want_axis[a] = w;
    want_sign[a] = s;
  }
  auto ornt = io_orientation(affine);
  OrientationPlan plan;
  for (int j = 0; j < 3; ++j) {
    if (ornt[j].axis < 0) throw Error("orientation: degenerate affine (a voxel axis has no direction)");
    int a = static_cast<int>(std::find(want_axis.begin(), want_axis.end(), ornt[j].axis) - want_axis.begin());
    plan.perm[a] = j;
    plan.flip[a] = ornt[j].sign != want_sign[a];
  }
  // F maps new voxel indices to old ones; A_new = A_old * F.
  Affine f;
  f.m = {{{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 1}}};
  for (int a = 0; a < 3; ++a) {
    const int j = plan.perm[a];
    plan.out_size[a] = size[j];
    f(j, a) = plan.flip[a] ? -1.0 : 1.0;
    f(j, 3) = plan.flip[a] ? static_cast<double>(size[j] - 1) : 0.0;
    if (j != a || plan.flip[a]) plan.identity = false;
  }
  plan.out_affine = affine * f;
  return plan;
}

template <typename T>
Grid<T> apply_orientation(const Grid<T>& in, const OrientationPlan& plan) {
  if (plan.identity) return in;
  Grid<T> out = Grid<T>::make(in.channels, plan.out_size, plan.out_affine);
  const std::int64_t in_stride[3] = {in.size[1] * in.size[2], in.size[2], 1};
  std::int64_t step[3], base = 0;
  for (int a = 0; a < 3; ++a) {
    const int j = plan.perm[a];
    step[a] = plan.flip[a] ? -in_stride[j] : in_stride[j];
    if (plan.flip[a]) base += (in.size[j] - 1) * in_stride[j];
  }
  const Shape3 s = plan.out_size;
  for (std::int64_t c = 0; c < in.channels; ++c) {
    const T* src = in.channel(c) + base;
    T* dst = out.channel(c);
    for (std::int64_t i = 0; i < s[0]; ++i)
      for (std::int64_t j = 0; j < s[1]; ++j) {
        const T* p = src + i * step[0] + j * step[1];
        T* d = dst + (i * s[1] + j) * s[2];
        for (std::int64_t k = 0; k < s[2]; ++k) d[k] = p[k * step[2]];
      }
  }
  return out;
}

template <typename T>
Grid<T> crop(const Grid<T>& in, const Shape3& start, const Shape3& size) {
  for (int a = 0; a < 3; ++a)
    if (start[a] < 0 || size[a] < 1 || start[a] + size[a] > in.size[a]) throw Error("crop: window outside the volume");
  Affine af = in.affine;
  for (int r = 0; r < 3; ++r) af(r, 3) += in.affine(r, 0) * start[0] + in.affine(r, 1) * start[1] + in.affine(r, 2) * start[2];
  Grid<T> out = Grid<T>::make(in.channels, size, af);
  for (std::int64_t c = 0; c < in.channels; ++c)
    for (std::int64_t i = 0; i < size[0]; ++i)
      for (std::int64_t j = 0; j < size[1]; ++j)
        std::memcpy(out.channel(c) + (i * size[1] + j) * size[2],
                    in.channel(c) + ((i + start[0]) * in.size[1] + (j + start[1])) * in.size[2] + start[2], size[2] * sizeof(T));
  return out;
}

template <typename T>
void flip_axis(Grid<T>& g, int axis) {
  if (axis < 0 || axis > 2) throw Error("flip: spatial axis must be 0, 1 or 2");
  const Shape3 s = g.size;
  for (std::int64_t c = 0; c < g.channels; ++c) {
    T* p = g.channel(c);
    if (axis == 2) {
      for (std::int64_t r = 0; r < s[0] * s[1]; ++r) std::reverse(p + r * s[2], p + (r + 1) * s[2]);
    } else if (axis == 1) {
      for (std::int64_t i = 0; i < s[0]; ++i)
        for (std::int64_t j = 0; j < s[1] / 2; ++j)
          std::swap_ranges(p + (i * s[1] + j) * s[2], p + (i * s[1] + j + 1) * s[2], p + (i * s[1] + s[1] - 1 - j) * s[2]);
    } else {
      const std::int64_t plane = s[1] * s[2];
      for (std::int64_t i = 0; i < s[0] / 2; ++i) std::swap_ranges(p + i * plane, p + (i + 1) * plane, p + (s[0] - 1 - i) * plane);
    }
  }
  for (int r = 0; r < 3; ++r) {
    g.affine(r, 3) += g.affine(r, axis) * static_cast<double>(s[axis] - 1);
    g.affine(r, axis) = -g.affine(r, axis);
  }
}

template Grid<float> apply_orientation(const Grid<float>&, const OrientationPlan&);
template Grid<std::uint8_t> apply_orientation(const Grid<std::uint8_t>&, const OrientationPlan&);
template Grid<float> crop(const Grid<float>&, const Shape3&, const Shape3&);
template Grid<std::uint8_t> crop(const Grid<std::uint8_t>&, const Shape3&, const Shape3&);
template void flip_axis(Grid<float>&, int);
template void flip_axis(Grid<std::uint8_t>&, int);

}  // namespace segscale::transforms
