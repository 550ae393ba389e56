#include "transforms/nnunet_chain.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "transforms/nnunet_spatial.h"
#include "transforms/nnunet_targets.h"
#include "transforms/rng.h"

namespace segscale::transforms {

double NnunetReplayDraws::np_random() { return legacy_rand(np_); }

std::int64_t NnunetReplayDraws::np_randint(std::int64_t lo, std::int64_t hi) { return legacy_randint(np_, lo, hi); }

float NnunetReplayDraws::torch_rand() { return static_cast<float>(torch_() & 0xFFFFFFu & ((1u << 24) - 1)) * 0x1p-24f; }

void NnunetReplayDraws::torch_normal(float* out, std::size_t n, float mean, float std) {
  // torch's CPU normal_ for >= 16 contiguous floats: uniforms first, then Box-Muller on blocks of 16 (j with j + 8);
  // a tail is handled by redrawing the last 16.
  const auto fill16 = [&](float* d) {
    for (int j = 0; j < 8; ++j) {
      const float u1 = 1 - d[j], u2 = d[j + 8];
      const float radius = std::sqrt(-2 * std::log(u1)), theta = 2.0f * std::numbers::pi_v<float> * u2;
      d[j] = radius * std::cos(theta) * std + mean;
      d[j + 8] = radius * std::sin(theta) * std + mean;
    }
  };
  for (std::size_t i = 0; i < n; ++i) out[i] = torch_rand();
  for (std::size_t i = 0; i + 16 <= n; i += 16) fill16(out + i);
  if (n % 16 != 0 && n >= 16) {
    float* tail = out + n - 16;
    for (int i = 0; i < 16; ++i) tail[i] = torch_rand();
    fill16(tail);
  }
}

namespace {

// BGContrast(range): one random() < 0.5 (and lo < 1) picks [lo, 1), else [max(lo, 1), hi).
double bg_contrast(NnunetDraws& d, double lo, double hi) {
  if (d.np_random() < 0.5 && lo < 1) return d.np_uniform(lo, 1);
  return d.np_uniform(std::max(lo, 1.0), hi);
}

std::vector<bool> channel_picks(NnunetDraws& d, int channels, float p) {
  std::vector<bool> v;
  for (int c = 0; c < channels; ++c) v.push_back(d.torch_rand() < p);
  return v;
}

}  // namespace

NnunetAugmented nnunet_augment(const LoadedPatch& in, const NnunetAugmentSettings& s, NnunetDraws& d) {
  const int channels = in.channels;
  NnunetAugmented out;
  auto& L = out.ledger;
  const Extent3 p = s.patch;
  const std::size_t n = static_cast<std::size_t>(p[0] * p[1] * p[2]);
  // 0. SpatialTransform: rotation ±pi/6 per axis (p 0.2), one zoom in 0.7..1.4 (p 0.2), elastic never (drawn).
  NnunetSpatialParams sp;
  sp.rotate = d.np_random() < 0.2;
  sp.scale = d.np_random() < 0.2;
  (void)(d.np_random() < 0);
  if (sp.rotate)
    for (auto& a : sp.angles) a = d.np_uniform(-30. / 360 * 2. * std::numbers::pi, 30. / 360 * 2. * std::numbers::pi);  // as nnU-Net writes it
  if (sp.scale) {
    (void)d.np_random();  // p_synchronize_scaling_across_axes: always
    sp.zoom = d.np_uniform(0.7, 1.4);
  }
  L.rotated = sp.rotate;
  L.scaled = sp.scale;
  L.angles = sp.angles;
  L.zoom = sp.zoom;
  out.image.resize(n * static_cast<std::size_t>(channels));
  std::vector<std::int16_t> seg(n);
  nnunet_spatial(in, p, sp, out.image.data(), seg.data());
  float* img = out.image.data();
  const auto ch = [&](int c) { return img + static_cast<std::size_t>(c) * n; };
  // 1. Gaussian noise (0.1): one sigma in [0, 0.1) for all channels, torch's normal_ for the values.
  if (d.torch_rand() < 0.1f) {
    L.fired.push_back("noise");
    (void)channel_picks(d, channels, 1.0f);
    const float sigma = static_cast<float>(d.np_uniform(0, 0.1));
    std::vector<float> noise(n * static_cast<std::size_t>(channels));
    d.torch_normal(noise.data(), noise.size(), 0.0f, sigma);
    for (std::size_t i = 0; i < noise.size(); ++i) img[i] += noise[i];
  }
  // 2. Gaussian blur (0.2): channels with p 0.5, sigma per axis in [0.5, 1).
  if (d.torch_rand() < 0.2f) {
    L.fired.push_back("blur");
    const auto pick = channel_picks(d, channels, 0.5f);
    std::vector<std::array<double, 3>> sig;
    for (int c = 0; c < channels; ++c)
      if (pick[static_cast<std::size_t>(c)]) sig.push_back({d.np_uniform(0.5, 1), d.np_uniform(0.5, 1), d.np_uniform(0.5, 1)});
    std::size_t k = 0;
    for (int c = 0; c < channels; ++c)
      if (pick[static_cast<std::size_t>(c)]) nnunet_blur(ch(c), p, sig[k++]);
  }
  // 3. Multiplicative brightness (0.15), 4. contrast (0.15): BGContrast(0.75, 1.25) per channel.
  for (const bool contrast : {false, true}) {
    if (!(d.torch_rand() < 0.15f)) continue;
    L.fired.push_back(contrast ? "contrast" : "brightness");
    (void)channel_picks(d, channels, 1.0f);
    std::vector<float> m;
    for (int c = 0; c < channels; ++c) m.push_back(static_cast<float>(bg_contrast(d, 0.75, 1.25)));
    for (int c = 0; c < channels; ++c) (contrast ? nnunet_contrast : nnunet_brightness)(ch(c), n, m[static_cast<std::size_t>(c)]);
  }
  // 5. Low resolution (0.25): channels with p 0.5, one zoom in [0.5, 1) per channel.
  if (d.torch_rand() < 0.25f) {
    L.fired.push_back("low_resolution");
    const auto pick = channel_picks(d, channels, 0.5f);
    std::vector<float> z;
    for (int c = 0; c < channels; ++c)
      if (pick[static_cast<std::size_t>(c)]) z.push_back(static_cast<float>(d.np_uniform(0.5, 1)));
    std::size_t k = 0;
    for (int c = 0; c < channels; ++c)
      if (pick[static_cast<std::size_t>(c)]) nnunet_low_resolution(ch(c), p, z[k++]);
  }
  // 6. Gamma on the inverted image (0.1), 7. gamma (0.3): BGContrast(0.7, 1.5) per channel, stats retained.
  for (const auto& [gate, invert] : {std::pair{0.1f, true}, std::pair{0.3f, false}}) {
    if (!(d.torch_rand() < gate)) continue;
    L.fired.push_back(invert ? "gamma_inverted" : "gamma");
    (void)channel_picks(d, channels, 1.0f);
    (void)channel_picks(d, channels, 1.0f);                    // retain stats: always
    (void)channel_picks(d, channels, invert ? 1.0f : 0.0f);    // invert: always / never
    std::vector<float> g;
    for (int c = 0; c < channels; ++c) g.push_back(static_cast<float>(bg_contrast(d, 0.7, 1.5)));
    for (int c = 0; c < channels; ++c) nnunet_gamma(ch(c), n, g[static_cast<std::size_t>(c)], invert, true);
  }
  // 8. Mirroring: each axis with p 0.5.
  for (int a = 0; a < 3; ++a)
    if (d.torch_rand() < 0.5f) L.mirrored.push_back(a);
  if (!L.mirrored.empty()) {
    nnunet_mirror(img, channels, p, L.mirrored);
    nnunet_mirror(seg.data(), 1, p, L.mirrored);
  }
  // 9-12. Masking, -1 removal, regions, deep-supervision targets.
  if (std::find(s.use_mask_for_norm.begin(), s.use_mask_for_norm.end(), true) != s.use_mask_for_norm.end())
    nnunet_mask_image(img, channels, seg.data(), p, s.use_mask_for_norm);
  nnunet_remove_label(seg.data(), n);
  std::vector<std::int16_t> full = seg;
  if (!s.regions.empty()) {
    const auto r = nnunet_regions(seg.data(), n, s.regions);
    full.assign(r.begin(), r.end());
    out.target_channels = static_cast<int>(s.regions.size());
  }
  const std::vector<std::array<double, 3>> scales = s.ds_scales.empty() ? std::vector<std::array<double, 3>>{{1, 1, 1}} : s.ds_scales;
  for (const auto& sc : scales) {
    if (sc == std::array<double, 3>{1, 1, 1}) {
      out.targets.push_back(full);
      out.target_shapes.push_back(p);
    } else {
      Extent3 o{};
      out.targets.push_back(nnunet_downsample(full.data(), out.target_channels, p, sc, o));
      out.target_shapes.push_back(o);
    }
  }
  return out;
}

}  // namespace segscale::transforms
