#include "transforms/intensity.h"

#include <fmt/format.h>

#include <cmath>

#include "util/error.h"

namespace segscale::transforms {
namespace {

void normalize_span(float* p, std::size_t n, bool nonzero, const std::string& where) {
  double sum = 0, sq = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = p[i];
    if (nonzero && v == 0.0f) continue;
    if (!std::isfinite(v)) throw error_at(where, fmt::format("non-finite voxel value {} at index {}; cannot normalise", v, i));
    sum += v;
    ++count;
  }
  if (count == 0) return;
  const double mean_d = sum / static_cast<double>(count);
  for (std::size_t i = 0; i < n; ++i) {
    if (nonzero && p[i] == 0.0f) continue;
    const double d = p[i] - mean_d;
    sq += d * d;
  }
  const float mean = static_cast<float>(mean_d);
  float std_f = static_cast<float>(std::sqrt(sq / static_cast<double>(count)));
  if (std_f == 0.0f) std_f = 1.0f;
  for (std::size_t i = 0; i < n; ++i) {
    if (nonzero && p[i] == 0.0f) continue;
    p[i] = (p[i] - mean) / std_f;
  }
}

}  // namespace

void normalize_intensity(Volume& v, bool nonzero, bool channel_wise, const std::string& where) {
  if (channel_wise) {
    for (std::int64_t c = 0; c < v.channels; ++c)
      normalize_span(v.channel(c), static_cast<std::size_t>(v.voxels()), nonzero, fmt::format("{} channel {}", where, c));
  } else {
    normalize_span(v.data.data(), v.data.size(), nonzero, where);
  }
}

void scale_intensity(Volume& v, double factor) {
  const float f = static_cast<float>(1.0 + factor);
  for (float& x : v.data) x *= f;
}

void shift_intensity(Volume& v, double offset) {
  const float o = static_cast<float>(offset);
  for (float& x : v.data) x += o;
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
