#include "transforms/window_stage.h"

#include <fmt/format.h>

#include <cstring>
#include <memory>

#include "transforms/intensity.h"
#include "util/error.h"
#include "util/half.h"
#include "util/voxel_loop.h"

namespace segscale::transforms {
namespace {

// The order plan_window accepts; a step with no effect (a flip, scale or shift not drawn) has no place in it.
enum Phase { kCrop, kFlip, kNormalize, kScale, kShift };

// Every binary16 value widened once: a table lookup per voxel instead of the bit manipulation.
const float* half_table() {
  static const std::unique_ptr<float[]> table = [] {
    auto t = std::make_unique<float[]>(65536);
    for (std::uint32_t h = 0; h < 65536; ++h) t[h] = half_to_float(static_cast<std::uint16_t>(h));
    return t;
  }();
  return table.get();
}

struct Float32 {
  using Out = float;
  static float at(const std::uint8_t* p, std::int64_t i) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  }
};
struct Float16 {
  using Out = float;
  const float* table = half_table();
  float at(const std::uint8_t* p, std::int64_t i) const {
    std::uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return table[h];
  }
};
struct Byte {
  using Out = std::uint8_t;
  static std::uint8_t at(const std::uint8_t* p, std::int64_t i) { return p[i]; }
};

// One channel's window, flipped as planned. `src`: the channel's first stored value.
template <typename Read>
SEGSCALE_INLINE void copy_window(const Read& read, const std::uint8_t* src, const Shape3& in, const WindowPlan& w, typename Read::Out* out) {
  const Shape3 &start = w.window.start, &size = w.window.size;
  for (std::int64_t i = 0; i < size[0]; ++i) {
    const std::int64_t x = w.flip[0] ? start[0] + size[0] - 1 - i : start[0] + i;
    for (std::int64_t j = 0; j < size[1]; ++j) {
      const std::int64_t y = w.flip[1] ? start[1] + size[1] - 1 - j : start[1] + j;
      const std::int64_t row = (x * in[1] + y) * in[2] + start[2];
      typename Read::Out* o = out + (i * size[1] + j) * size[2];
      if (w.flip[2]) {
        for (std::int64_t k = 0; k < size[2]; ++k) o[k] = read.at(src, row + size[2] - 1 - k);
      } else {
        for (std::int64_t k = 0; k < size[2]; ++k) o[k] = read.at(src, row + k);
      }
    }
  }
}

SEGSCALE_VOXEL_LOOP void copy_float32(const std::uint8_t* src, const Shape3& in, const WindowPlan& w, float* out) noexcept {
  copy_window(Float32{}, src, in, w, out);
}
SEGSCALE_VOXEL_LOOP void copy_float16(const std::uint8_t* src, const Shape3& in, const WindowPlan& w, float* out) noexcept {
  copy_window(Float16{}, src, in, w, out);
}
SEGSCALE_VOXEL_LOOP void copy_bytes(const std::uint8_t* src, const Shape3& in, const WindowPlan& w, std::uint8_t* out) noexcept {
  copy_window(Byte{}, src, in, w, out);
}

}  // namespace

std::optional<WindowPlan> plan_window(const Pipeline& p, const std::vector<StepDraw>& draws, const Shape3& size) {
  WindowPlan w;
  w.window.size = size;
  int phase = kCrop;
  auto enter = [&](int next) {
    if (next < phase) return false;
    phase = next;
    return true;
  };
  for (const StepDraw& d : draws) {
    const Step& step = p.steps.at(d.step);
    if (std::holds_alternative<RandCropStep>(step) || std::holds_alternative<CenterCropStep>(step) ||
        std::holds_alternative<RandCropPosNegStep>(step)) {
      if (!enter(kCrop)) return std::nullopt;
      for (int a = 0; a < 3; ++a) w.window.start[a] += d.box.start[a];
      w.window.size = d.box.size;
    } else if (const auto* flip = std::get_if<RandFlipStep>(&step)) {
      if (!d.applied) continue;
      if (!enter(kFlip)) return std::nullopt;
      for (std::size_t a = 0; a < 3; ++a)
        if (flip->spatial_axis.axis[a]) w.flip[a] = !w.flip[a];
    } else if (const auto* norm = std::get_if<NormalizeStep>(&step)) {
      if (w.normalize || !enter(kNormalize)) return std::nullopt;
      w.normalize = *norm;
    } else if (std::holds_alternative<RandScaleStep>(step)) {
      if (!d.applied) continue;
      if (w.scale || !enter(kScale)) return std::nullopt;
      w.scale = static_cast<float>(1.0 + d.value);  // as scale_intensity
    } else if (std::holds_alternative<RandShiftStep>(step)) {
      if (!d.applied) continue;
      if (w.shift || !enter(kShift)) return std::nullopt;
      w.shift = static_cast<float>(d.value);  // as shift_intensity
    } else {
      return std::nullopt;  // spacing or orientation
    }
  }
  return w;
}

void run_window(const WindowPlan& plan, const StoredArrays& in, float* image, std::uint8_t* label, const std::string& where) {
  const Shape3& out = plan.window.size;
  const std::int64_t in_voxels = in.size[0] * in.size[1] * in.size[2], out_voxels = out[0] * out[1] * out[2];
  const std::int64_t value_bytes = in.float16 ? 2 : 4;
  auto copy_image_channel = [&](std::int64_t c) {
    const std::uint8_t* src = in.image + c * in_voxels * value_bytes;
    if (in.float16) copy_float16(src, in.size, plan, image + c * out_voxels);
    else copy_float32(src, in.size, plan, image + c * out_voxels);
  };
  const float* scale = plan.scale ? &*plan.scale : nullptr;
  const float* shift = plan.shift ? &*plan.shift : nullptr;
  const auto n = static_cast<std::size_t>(out_voxels);
  if (plan.normalize && plan.normalize->channel_wise) {
    // Channel by channel, so the statistics and the write find the window still in cache.
    for (std::int64_t c = 0; c < in.channels; ++c) {
      copy_image_channel(c);
      float* v = image + c * out_voxels;
      const Moments m = intensity_moments(v, n, plan.normalize->nonzero, fmt::format("{} channel {}", where, c));
      normalize_scale_shift(v, n, &m, plan.normalize->nonzero, scale, shift);
    }
  } else {
    for (std::int64_t c = 0; c < in.channels; ++c) copy_image_channel(c);
    const std::size_t all = n * static_cast<std::size_t>(in.channels);
    std::optional<Moments> m;
    if (plan.normalize) m = intensity_moments(image, all, plan.normalize->nonzero, where);
    normalize_scale_shift(image, all, m ? &*m : nullptr, plan.normalize && plan.normalize->nonzero, scale, shift);
  }
  if (label && in.label)
    for (std::int64_t c = 0; c < in.label_channels; ++c) copy_bytes(in.label + c * in_voxels, in.size, plan, label + c * out_voxels);
}

std::optional<CropCentres> centres_for_stored(const Pipeline& p, const StoredArrays& in) {
  const RandCropPosNegStep* crop = p.pos_neg_crop();
  if (!crop) return std::nullopt;
  if (!in.label) throw Error("rand_crop_by_pos_neg_label needs the stored label");
  std::vector<float> widened;
  const float* image = nullptr;
  if (crop->use_image) {
    const std::int64_t n = in.channels * in.size[0] * in.size[1] * in.size[2];
    widened.resize(static_cast<std::size_t>(n));
    if (in.float16) {
      const float* table = half_table();
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, in.image + 2 * i, 2);
        widened[static_cast<std::size_t>(i)] = table[h];
      }
    } else {
      std::memcpy(widened.data(), in.image, static_cast<std::size_t>(n) * 4);
    }
    image = widened.data();
  }
  return CropCentres(in.size, crop_classes(in.size, in.label, in.label_channels, data::label_map_preset(p.label_map), image, in.channels,
                                           crop->image_threshold, crop->use_image));
}

}  // namespace segscale::transforms
