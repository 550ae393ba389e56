#include "loader/nnunet_sampler.h"

#include <algorithm>
#include <cmath>

#include "transforms/rng.h"
#include "util/error.h"

namespace segscale::loader {

std::int64_t NumpyDraws::randint(std::int64_t lo, std::int64_t hi) { return transforms::legacy_randint(g_, lo, hi); }

Int3 nnunet_initial_patch_size(const Int3& final_patch_size) {
  const double pi = 3.141592653589793;
  const double rot = std::min(90 / 360.0 * 2. * pi, 30. / 360 * 2. * pi);
  const double c = std::cos(rot), s = std::sin(rot);
  // coords . R for Rx, Ry, Rz (row vector times matrix), elementwise |.|, max with the patch itself.
  const double R[3][3][3] = {{{1, 0, 0}, {0, c, -s}, {0, s, c}}, {{c, 0, s}, {0, 1, 0}, {-s, 0, c}}, {{c, -s, 0}, {s, c, 0}, {0, 0, 1}}};
  std::array<double, 3> best{};
  for (int d = 0; d < 3; ++d) best[d] = static_cast<double>(final_patch_size[d]);
  for (const auto& m : R)
    for (int j = 0; j < 3; ++j) {
      double v = 0;
      for (int i = 0; i < 3; ++i) v += static_cast<double>(final_patch_size[i]) * m[i][j];
      best[j] = std::max(best[j], std::abs(v));
    }
  Int3 out{};
  for (int d = 0; d < 3; ++d) out[d] = static_cast<std::int64_t>(best[d] / 0.85);
  return out;
}

bool forced_foreground(int slot, int batch_size, double oversample_foreground_percent) {
  // not j < round(B * (1 - p)), with Python's round (half to even)
  return !(slot < std::nearbyint(batch_size * (1 - oversample_foreground_percent)));
}

PatchBox nnunet_bbox(Draws& draws, const SamplerCase& c, bool force_fg, const NnunetSamplerConfig& cfg) {
  PatchBox box;
  box.force_fg = force_fg;
  Int3 lbs{}, ubs{};
  for (int d = 0; d < 3; ++d) {
    std::int64_t need = cfg.patch_size[d] - cfg.final_patch_size[d];
    if (need + c.shape[d] < cfg.patch_size[d]) need = cfg.patch_size[d] - c.shape[d];
    lbs[d] = -((need + 1) / 2);  // Python's -need // 2 (floor), need >= 0
    ubs[d] = c.shape[d] + need / 2 + need % 2 - cfg.patch_size[d];
  }
  const std::vector<std::array<std::int64_t, 4>>* voxels = nullptr;
  if (force_fg) {
    std::vector<std::size_t> eligible;
    for (std::size_t k = 0; k < c.class_locations.size(); ++k)
      if (!c.class_locations[k].empty()) eligible.push_back(k);
    if (!eligible.empty()) voxels = &c.class_locations[eligible[static_cast<std::size_t>(draws.randint(0, static_cast<std::int64_t>(eligible.size())))]];
  }
  if (voxels) {
    const auto& v = (*voxels)[static_cast<std::size_t>(draws.randint(0, static_cast<std::int64_t>(voxels->size())))];
    for (int d = 0; d < 3; ++d) box.lbs[d] = std::max(lbs[d], v[static_cast<std::size_t>(d) + 1] - cfg.patch_size[d] / 2);
  } else {
    for (int d = 0; d < 3; ++d) box.lbs[d] = draws.randint(lbs[d], ubs[d] + 1);
  }
  for (int d = 0; d < 3; ++d) box.ubs[d] = box.lbs[d] + cfg.patch_size[d];
  return box;
}

std::vector<PatchBox> nnunet_batch(Draws& draws, std::span<const SamplerCase> cases, const NnunetSamplerConfig& cfg) {
  if (cases.empty()) throw Error("nnU-Net sampler: no cases");
  if (cfg.batch_size < 1) throw Error("nnU-Net sampler: the batch size must be at least 1");
  std::vector<std::size_t> keys;
  for (int j = 0; j < cfg.batch_size; ++j) keys.push_back(static_cast<std::size_t>(draws.randint(0, static_cast<std::int64_t>(cases.size()))));
  std::vector<PatchBox> out;
  for (int j = 0; j < cfg.batch_size; ++j) {
    PatchBox b = nnunet_bbox(draws, cases[keys[static_cast<std::size_t>(j)]], forced_foreground(j, cfg.batch_size, cfg.oversample_foreground_percent), cfg);
    b.case_index = keys[static_cast<std::size_t>(j)];
    out.push_back(b);
  }
  return out;
}

void crop_and_pad(const float* image, int channels, const std::int16_t* seg, const Int3& shape, const PatchBox& box, float* image_out,
                  std::int16_t* seg_out) {
  const Int3 p{box.ubs[0] - box.lbs[0], box.ubs[1] - box.lbs[1], box.ubs[2] - box.lbs[2]};
  const std::int64_t pv = p[0] * p[1] * p[2], sv = shape[0] * shape[1] * shape[2];
  std::fill(image_out, image_out + pv * channels, 0.0f);
  if (seg_out) std::fill(seg_out, seg_out + pv, std::int16_t{-1});
  // The part of the box inside the case.
  Int3 lo{}, hi{};
  for (int d = 0; d < 3; ++d) {
    lo[d] = std::clamp<std::int64_t>(box.lbs[d], 0, shape[d]);
    hi[d] = std::clamp<std::int64_t>(box.ubs[d], 0, shape[d]);
    if (hi[d] <= lo[d]) return;
  }
  for (int c = 0; c < channels; ++c)
    for (std::int64_t i = lo[0]; i < hi[0]; ++i)
      for (std::int64_t j = lo[1]; j < hi[1]; ++j) {
        const std::int64_t src = c * sv + (i * shape[1] + j) * shape[2];
        const std::int64_t dst = c * pv + ((i - box.lbs[0]) * p[1] + (j - box.lbs[1])) * p[2] - box.lbs[2];
        std::copy(image + src + lo[2], image + src + hi[2], image_out + dst + lo[2]);
        if (seg_out && c == 0) std::copy(seg + (i * shape[1] + j) * shape[2] + lo[2], seg + (i * shape[1] + j) * shape[2] + hi[2], seg_out + dst + lo[2]);
      }
}

}  // namespace segscale::loader
