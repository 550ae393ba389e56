#include "transforms/intensity.h"

#include <fmt/format.h>

#include <cmath>

#include "util/error.h"

namespace segscale::transforms {
namespace {

constexpr std::size_t kLanes = 8;

[[noreturn]] void throw_non_finite(const float* p, std::size_t n, const std::string& where) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) throw error_at(where, fmt::format("non-finite voxel value {} at index {}; cannot normalise", p[i], i));
  throw error_at(where, "non-finite intensity sum; cannot normalise");  // unreachable: a finite float sum fits a double
}

// Selected values summed per lane: lane k takes the indices i with i % 8 == k. Zeros add nothing to a sum, so
// only the count needs the selection; a non-finite value makes the sum non-finite, which is checked once.
template <bool kNonzero>
Moments moments(const float* p, std::size_t n, const std::string& where) {
  double sum[kLanes] = {}, sq[kLanes] = {};
  std::size_t count[kLanes] = {};
  const std::size_t body = n - n % kLanes;
  for (std::size_t i = 0; i < body; i += kLanes)
    for (std::size_t k = 0; k < kLanes; ++k) {
      sum[k] += p[i + k];
      if constexpr (kNonzero) count[k] += p[i + k] != 0.0f;
    }
  for (std::size_t i = body; i < n; ++i) {
    sum[i % kLanes] += p[i];
    if constexpr (kNonzero) count[i % kLanes] += p[i] != 0.0f;
  }
  double total = 0;
  std::size_t selected = kNonzero ? 0 : n;
  for (std::size_t k = 0; k < kLanes; ++k) total += sum[k], selected += count[k];
  if (!std::isfinite(total)) throw_non_finite(p, n, where);
  Moments m;
  m.count = selected;
  if (selected == 0) return m;
  const double mean = total / static_cast<double>(selected);
  for (std::size_t i = 0; i < body; i += kLanes)
    for (std::size_t k = 0; k < kLanes; ++k) {
      const double d = p[i + k] - mean;
      sq[k] += (kNonzero && p[i + k] == 0.0f) ? 0.0 : d * d;
    }
  for (std::size_t i = body; i < n; ++i) {
    const double d = p[i] - mean;
    sq[i % kLanes] += (kNonzero && p[i] == 0.0f) ? 0.0 : d * d;
  }
  double squares = 0;
  for (std::size_t k = 0; k < kLanes; ++k) squares += sq[k];
  m.mean = static_cast<float>(mean);
  m.std = static_cast<float>(std::sqrt(squares / static_cast<double>(selected)));
  if (m.std == 0.0f) m.std = 1.0f;
  return m;
}

template <bool kNormalize, bool kNonzero, bool kScale, bool kShift>
void point_ops(float* p, std::size_t n, float mean, float sd, float f, float o) {
  for (std::size_t i = 0; i < n; ++i) {
    float v = p[i];
    if constexpr (kNormalize) {
      const float r = (v - mean) / sd;
      v = (kNonzero && v == 0.0f) ? v : r;
    }
    if constexpr (kScale) v = v * f;
    if constexpr (kShift) v = v + o;
    p[i] = v;
  }
}

template <bool kNormalize, bool kNonzero>
void point_ops(float* p, std::size_t n, float mean, float sd, const float* scale, const float* shift) {
  const float f = scale ? *scale : 1.0f, o = shift ? *shift : 0.0f;
  if (scale && shift) point_ops<kNormalize, kNonzero, true, true>(p, n, mean, sd, f, o);
  else if (scale) point_ops<kNormalize, kNonzero, true, false>(p, n, mean, sd, f, o);
  else if (shift) point_ops<kNormalize, kNonzero, false, true>(p, n, mean, sd, f, o);
  else if (kNormalize) point_ops<kNormalize, kNonzero, false, false>(p, n, mean, sd, f, o);
}

}  // namespace

Moments intensity_moments(const float* p, std::size_t n, bool nonzero, const std::string& where) {
  return nonzero ? moments<true>(p, n, where) : moments<false>(p, n, where);
}

void normalize_scale_shift(float* p, std::size_t n, const Moments* m, bool nonzero, const float* scale, const float* shift) {
  if (!m || m->count == 0) return point_ops<false, false>(p, n, 0, 1, scale, shift);
  if (nonzero) return point_ops<true, true>(p, n, m->mean, m->std, scale, shift);
  point_ops<true, false>(p, n, m->mean, m->std, scale, shift);
}

void normalize_intensity(Volume& v, bool nonzero, bool channel_wise, const std::string& where) {
  if (channel_wise) {
    const auto n = static_cast<std::size_t>(v.voxels());
    for (std::int64_t c = 0; c < v.channels; ++c) {
      const Moments m = intensity_moments(v.channel(c), n, nonzero, fmt::format("{} channel {}", where, c));
      normalize_scale_shift(v.channel(c), n, &m, nonzero, nullptr, nullptr);
    }
  } else {
    const Moments m = intensity_moments(v.data.data(), v.data.size(), nonzero, where);
    normalize_scale_shift(v.data.data(), v.data.size(), &m, nonzero, nullptr, nullptr);
  }
}

void scale_intensity(Volume& v, double factor) {
  const float f = static_cast<float>(1.0 + factor);
  normalize_scale_shift(v.data.data(), v.data.size(), nullptr, false, &f, nullptr);
}

void shift_intensity(Volume& v, double offset) {
  const float o = static_cast<float>(offset);
  normalize_scale_shift(v.data.data(), v.data.size(), nullptr, false, nullptr, &o);
}

LabelVolume label_channels_u8(const LabelVolume& label, const data::LabelMap& map) {
  LabelVolume out = LabelVolume::make(3, label.size, label.affine);
  const std::size_t n = static_cast<std::size_t>(label.voxels());
  for (int c = 0; c < 3; ++c) {
    std::array<std::uint8_t, 256> lut{};
    for (int v : map.channels[c]) lut[static_cast<std::size_t>(v)] = 1;
    const std::uint8_t* src = label.channel(0);
    std::uint8_t* dst = out.channel(c);
    for (std::size_t i = 0; i < n; ++i) dst[i] = lut[src[i]];
  }
  return out;
}

Volume label_channels(const LabelVolume& label, const data::LabelMap& map) {
  LabelVolume u8 = label_channels_u8(label, map);
  Volume out = Volume::make(3, label.size, label.affine);
  for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = u8.data[i];
  return out;
}

}  // namespace segscale::transforms
