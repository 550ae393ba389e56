#include "transforms/nnunet_intensity.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace segscale::transforms {
namespace {

struct Stats {
  float mean = 0, std_unbiased = 0, min = 0, max = 0;
};

Stats stats(const float* x, std::size_t n) {
  double sum = 0;
  float mn = x[0], mx = x[0];
  for (std::size_t i = 0; i < n; ++i) {
    sum += x[i];
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  const double mean = sum / static_cast<double>(n);
  double sq = 0;
  for (std::size_t i = 0; i < n; ++i) sq += (x[i] - mean) * (x[i] - mean);
  return {static_cast<float>(mean), static_cast<float>(n > 1 ? std::sqrt(sq / static_cast<double>(n - 1)) : NAN), mn, mx};
}

}  // namespace

void nnunet_brightness(float* x, std::size_t n, float multiplier) {
  for (std::size_t i = 0; i < n; ++i) x[i] *= multiplier;
}

void nnunet_contrast(float* x, std::size_t n, float multiplier) {
  const Stats s = stats(x, n);
  for (std::size_t i = 0; i < n; ++i) x[i] = std::clamp((x[i] - s.mean) * multiplier + s.mean, s.min, s.max);
}

void nnunet_gamma(float* x, std::size_t n, float gamma, bool invert, bool retain_stats) {
  constexpr float kEps = 1e-7f;
  if (invert)
    for (std::size_t i = 0; i < n; ++i) x[i] = -x[i];
  const Stats before = stats(x, n);
  const float range = before.max - before.min, denom = std::max(range, kEps);
  for (std::size_t i = 0; i < n; ++i) x[i] = std::pow((x[i] - before.min) / denom, gamma) * range + before.min;
  if (retain_stats) {
    const Stats after = stats(x, n);
    const float factor = before.std_unbiased / std::max(after.std_unbiased, kEps);
    for (std::size_t i = 0; i < n; ++i) x[i] = (x[i] - after.mean) * factor + before.mean;
  }
  if (invert)
    for (std::size_t i = 0; i < n; ++i) x[i] = -x[i];
}

void nnunet_blur(float* x, const Extent3& shape, const std::array<double, 3>& sigma) {
  std::vector<float> line, padded;
  for (int axis = 0; axis < 3; ++axis) {
    // _build_kernel: k = the odd number nearest 6 sigma + 0.5; x = linspace(-(k-1)/2, (k-1)/2, k); exp(-x^2/2s^2) / sum
    const double n = sigma[static_cast<std::size_t>(axis)] * 6 + 0.5;
    const auto r = static_cast<std::int64_t>(std::nearbyint(n));
    const std::int64_t k = r % 2 == 1 ? r : (n >= static_cast<double>(r) ? r + 1 : r - 1);
    const float h = static_cast<float>(static_cast<double>(k - 1) * 0.5);
    std::vector<float> w(static_cast<std::size_t>(k));
    float sum = 0;
    for (std::int64_t i = 0; i < k; ++i) {
      const float xi = k == 1 ? -h : (i < k / 2 ? -h + (2 * h / static_cast<float>(k - 1)) * static_cast<float>(i)
                                               : h - (2 * h / static_cast<float>(k - 1)) * static_cast<float>(k - 1 - i));
      const float z = xi / static_cast<float>(sigma[static_cast<std::size_t>(axis)]);
      w[static_cast<std::size_t>(i)] = std::exp(-0.5f * (z * z));
    }
    for (float v : w) sum += v;
    for (float& v : w) v /= sum;
    const std::int64_t len = shape[static_cast<std::size_t>(axis)], half = k / 2;
    const std::int64_t stride = axis == 0 ? shape[1] * shape[2] : axis == 1 ? shape[2] : 1;
    const std::int64_t outer = axis == 0 ? 1 : shape[0], mid = axis == 0 ? shape[1] * shape[2] : (axis == 1 ? shape[2] : shape[1]);
    line.resize(static_cast<std::size_t>(len));
    padded.resize(static_cast<std::size_t>(len + 2 * half));
    // every line along the axis: (o, m) enumerate the other two axes
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t m = 0; m < mid; ++m) {
        const std::int64_t base = axis == 0 ? m : axis == 1 ? o * shape[1] * shape[2] + m : (o * shape[1] + m) * shape[2];
        for (std::int64_t i = 0; i < len + 2 * half; ++i) {
          std::int64_t src = i - half;  // reflect: the edge sample is not repeated
          if (src < 0) src = -src;
          if (src >= len) src = 2 * (len - 1) - src;
          padded[static_cast<std::size_t>(i)] = x[base + std::clamp<std::int64_t>(src, 0, len - 1) * stride];
        }
        for (std::int64_t i = 0; i < len; ++i) {
          float acc = 0;
          for (std::int64_t t = 0; t < k; ++t) acc += padded[static_cast<std::size_t>(i + t)] * w[static_cast<std::size_t>(t)];
          x[base + i * stride] = acc;
        }
      }
  }
}

void nnunet_low_resolution(float* x, const Extent3& shape, float zoom) {
  Extent3 small{};
  for (int d = 0; d < 3; ++d) small[d] = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::nearbyint(static_cast<double>(shape[d]) * zoom)));
  // nearest-exact: source = min(floor((i + 0.5) * in / out), in - 1), in float as torch computes it.
  std::array<std::vector<std::int64_t>, 3> pick;
  for (int d = 0; d < 3; ++d) {
    const float scale = static_cast<float>(shape[d]) / static_cast<float>(small[d]);
    for (std::int64_t i = 0; i < small[d]; ++i)
      pick[d].push_back(std::min(static_cast<std::int64_t>(std::floor((static_cast<float>(i) + 0.5f) * scale)), shape[d] - 1));
  }
  std::vector<float> low(static_cast<std::size_t>(small[0] * small[1] * small[2]));
  std::size_t o = 0;
  for (auto i : pick[0])
    for (auto j : pick[1])
      for (auto k : pick[2]) low[o++] = x[(i * shape[1] + j) * shape[2] + k];
  // trilinear, align_corners=False: source = max(0, (i + 0.5) * in / out - 0.5), the upper neighbour clamped.
  struct Tap {
    std::int64_t i0, i1;
    float w0, w1;
  };
  std::array<std::vector<Tap>, 3> taps;
  for (int d = 0; d < 3; ++d) {
    const float scale = static_cast<float>(small[d]) / static_cast<float>(shape[d]);
    for (std::int64_t i = 0; i < shape[d]; ++i) {
      const float src = std::max(scale * (static_cast<float>(i) + 0.5f) - 0.5f, 0.0f);
      const auto i0 = static_cast<std::int64_t>(src);
      const float l = src - static_cast<float>(i0);
      taps[d].push_back({i0, i0 + (i0 < small[d] - 1 ? 1 : 0), 1.0f - l, l});
    }
  }
  const auto at = [&](std::int64_t a, std::int64_t b, std::int64_t c) { return low[static_cast<std::size_t>((a * small[1] + b) * small[2] + c)]; };
  o = 0;
  for (const auto& t : taps[0])
    for (const auto& h : taps[1])
      for (const auto& w : taps[2])
        x[o++] = t.w0 * (h.w0 * (w.w0 * at(t.i0, h.i0, w.i0) + w.w1 * at(t.i0, h.i0, w.i1)) + h.w1 * (w.w0 * at(t.i0, h.i1, w.i0) + w.w1 * at(t.i0, h.i1, w.i1))) +
                 t.w1 * (h.w0 * (w.w0 * at(t.i1, h.i0, w.i0) + w.w1 * at(t.i1, h.i0, w.i1)) + h.w1 * (w.w0 * at(t.i1, h.i1, w.i0) + w.w1 * at(t.i1, h.i1, w.i1)));
}

}  // namespace segscale::transforms
