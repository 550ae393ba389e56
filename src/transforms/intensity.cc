#include "transforms/intensity.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "util/error.h"
#include "util/voxel_loop.h"

namespace segscale::transforms {
namespace {

constexpr std::size_t kLanes = 8;

[[noreturn]] void throw_non_finite(const float* p, std::size_t n, const std::string& where) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) throw error_at(where, fmt::format("non-finite voxel value {} at index {}; cannot normalise", p[i], i));
  throw error_at(where, "non-finite intensity sum; cannot normalise");  // unreachable: a finite float sum fits a double
}

// The vector helpers below are always inlined, so their AVX-sized values never cross a call: GCC's note that
// passing them would change the ABI does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
// GCC vector types (4 doubles, 8 floats, their comparison masks): element-wise IEEE operations, so the lanes
// compute exactly what the scalar code would, several at a time (two SSE2 or one AVX2 instruction each).
using F4 = float __attribute__((vector_size(16)));
using F8 = float __attribute__((vector_size(32)));
using D4 = double __attribute__((vector_size(32)));
using L4 = long long __attribute__((vector_size(32)));

SEGSCALE_INLINE D4 load_widened(const float* p) {
  F4 f;
  std::memcpy(&f, p, sizeof f);
  return __builtin_convertvector(f, D4);
}

// Selected values summed per lane: lane k takes the indices i with i % 8 == k (lanes 0-3 in `lo`, 4-7 in `hi`),
// the lanes then added in order. Zeros add nothing to a sum, so only the count needs the selection.
struct Sums {
  double total = 0;
  std::size_t count = 0;
};

template <bool kNonzero>
SEGSCALE_INLINE Sums sums(const float* p, std::size_t n) {
  D4 sum_lo{}, sum_hi{};
  L4 count_lo{}, count_hi{};  // minus the number selected (a true comparison is -1)
  const std::size_t body = n - n % kLanes;
  for (std::size_t i = 0; i < body; i += kLanes) {
    const D4 lo = load_widened(p + i), hi = load_widened(p + i + 4);
    sum_lo += lo;
    sum_hi += hi;
    if constexpr (kNonzero) count_lo += lo != 0.0, count_hi += hi != 0.0;
  }
  double sum[kLanes];
  std::int64_t count[kLanes];
  for (std::size_t k = 0; k < 4; ++k) {
    sum[k] = sum_lo[k], sum[k + 4] = sum_hi[k];
    count[k] = -count_lo[k], count[k + 4] = -count_hi[k];
  }
  for (std::size_t i = body; i < n; ++i) {
    sum[i % kLanes] += p[i];
    if constexpr (kNonzero) count[i % kLanes] += p[i] != 0.0f;
  }
  Sums s;
  s.count = kNonzero ? 0 : n;
  for (std::size_t k = 0; k < kLanes; ++k) s.total += sum[k], s.count += kNonzero ? static_cast<std::size_t>(count[k]) : 0;
  return s;
}

// Squared deviations from `mean` of the selected values, in the same lanes.
template <bool kNonzero>
SEGSCALE_INLINE double squares(const float* p, std::size_t n, double mean) {
  D4 sq_lo{}, sq_hi{};
  const std::size_t body = n - n % kLanes;
  for (std::size_t i = 0; i < body; i += kLanes) {
    const D4 lo = load_widened(p + i), hi = load_widened(p + i + 4);
    const D4 dlo = lo - mean, dhi = hi - mean;
    if constexpr (kNonzero) {
      sq_lo += lo != 0.0 ? dlo * dlo : D4{};
      sq_hi += hi != 0.0 ? dhi * dhi : D4{};
    } else {
      sq_lo += dlo * dlo;
      sq_hi += dhi * dhi;
    }
  }
  double sq[kLanes];
  for (std::size_t k = 0; k < 4; ++k) sq[k] = sq_lo[k], sq[k + 4] = sq_hi[k];
  for (std::size_t i = body; i < n; ++i) {
    const double d = p[i] - mean;
    sq[i % kLanes] += (kNonzero && p[i] == 0.0f) ? 0.0 : d * d;
  }
  double total = 0;
  for (std::size_t k = 0; k < kLanes; ++k) total += sq[k];
  return total;
}

// The multi-versioned kernels throw nothing: GCC 12 may mark a caller of a target_clones function nothrow
// and drop its unwinding paths, so errors are raised by the caller (intensity_moments).
SEGSCALE_VOXEL_LOOP Sums lane_sums(const float* p, std::size_t n, bool nonzero) noexcept {
  return nonzero ? sums<true>(p, n) : sums<false>(p, n);
}
SEGSCALE_VOXEL_LOOP double lane_squares(const float* p, std::size_t n, bool nonzero, double mean) noexcept {
  return nonzero ? squares<true>(p, n, mean) : squares<false>(p, n, mean);
}

template <bool kNormalize, bool kNonzero, bool kScale, bool kShift, typename T>
SEGSCALE_INLINE T point_op(T v, float mean, float sd, float f, float o) {
  if constexpr (kNormalize) {
    const T r = (v - mean) / sd;
    if constexpr (kNonzero) v = v == 0.0f ? v : r;
    else v = r;
  }
  if constexpr (kScale) v = v * f;
  if constexpr (kShift) v = v + o;
  return v;
}

template <bool kNormalize, bool kNonzero, bool kScale, bool kShift>
SEGSCALE_INLINE void point_ops(float* p, std::size_t n, float mean, float sd, float f, float o) {
  const std::size_t body = n - n % 8;
  for (std::size_t i = 0; i < body; i += 8) {
    F8 v;
    std::memcpy(&v, p + i, sizeof v);
    v = point_op<kNormalize, kNonzero, kScale, kShift>(v, mean, sd, f, o);
    std::memcpy(p + i, &v, sizeof v);
  }
  for (std::size_t i = body; i < n; ++i) p[i] = point_op<kNormalize, kNonzero, kScale, kShift>(p[i], mean, sd, f, o);
}

template <bool kNormalize, bool kNonzero>
SEGSCALE_INLINE void point_ops(float* p, std::size_t n, float mean, float sd, const float* scale, const float* shift) {
  const float f = scale ? *scale : 1.0f, o = shift ? *shift : 0.0f;
  if (scale && shift) point_ops<kNormalize, kNonzero, true, true>(p, n, mean, sd, f, o);
  else if (scale) point_ops<kNormalize, kNonzero, true, false>(p, n, mean, sd, f, o);
  else if (shift) point_ops<kNormalize, kNonzero, false, true>(p, n, mean, sd, f, o);
  else if (kNormalize) point_ops<kNormalize, kNonzero, false, false>(p, n, mean, sd, f, o);
}

}  // namespace

Moments intensity_moments(const float* p, std::size_t n, bool nonzero, const std::string& where) {
  const Sums s = lane_sums(p, n, nonzero);
  if (!std::isfinite(s.total)) throw_non_finite(p, n, where);  // a non-finite value makes the sum non-finite
  Moments m;
  m.count = s.count;
  if (s.count == 0) return m;
  const double mean = s.total / static_cast<double>(s.count);
  m.mean = static_cast<float>(mean);
  m.std = static_cast<float>(std::sqrt(lane_squares(p, n, nonzero, mean) / static_cast<double>(s.count)));
  if (m.std == 0.0f) m.std = 1.0f;
  return m;
}

SEGSCALE_VOXEL_LOOP void normalize_scale_shift(float* p, std::size_t n, const Moments* m, bool nonzero, const float* scale,
                                               const float* shift) noexcept {
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
