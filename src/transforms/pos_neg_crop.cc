#include "transforms/pos_neg_crop.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "transforms/pipeline.h"
#include "util/error.h"

namespace segscale::transforms {

std::int64_t CropCentres::Runs::at(std::int64_t k) const {
  if (k < 0 || k >= total) throw Error(fmt::format("crop centres: index {} outside [0, {})", k, total));
  const auto it = std::upper_bound(before.begin(), before.end(), k);  // first run starting after the k-th voxel
  const auto i = static_cast<std::size_t>(it - before.begin()) - 1;
  return start[i] + (k - before[i]);
}

CropCentres::CropCentres(const Shape3& size, const std::vector<std::uint8_t>& cls) : size_(size) {
  const auto n = static_cast<std::int64_t>(cls.size());
  if (n != size[0] * size[1] * size[2]) throw Error("crop centres: class array does not match the grid");
  std::uint8_t prev = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t c = cls[static_cast<std::size_t>(i)];
    if (c != prev && c != 0) {
      Runs& r = c == 1 ? fg_ : bg_;
      r.start.push_back(i);
      r.before.push_back(r.total);
    }
    if (c == 1) ++fg_.total;
    else if (c == 2) ++bg_.total;
    prev = c;
  }
  if (fg_.total == 0 && bg_.total == 0) throw Error("rand_crop_by_pos_neg_label: No sampling location available (no foreground and no background voxel)");
}

std::vector<std::uint8_t> crop_classes(const Shape3& size, const std::uint8_t* label, std::int64_t label_channels, const data::LabelMap& map,
                                       const float* image, std::int64_t image_channels, double image_threshold, bool use_image) {
  const std::int64_t n = size[0] * size[1] * size[2];
  std::vector<std::uint8_t> fg(static_cast<std::size_t>(n), 0);
  if (label_channels == 1) {
    std::array<std::uint8_t, 256> lut{};
    for (int ch : {1, 2})  // WT, ET
      for (int v : map.channels[static_cast<std::size_t>(ch)])
        if (v >= 0 && v < 256) lut[static_cast<std::size_t>(v)] = 1;
    for (std::int64_t i = 0; i < n; ++i) fg[static_cast<std::size_t>(i)] = lut[label[i]];
  } else {
    for (std::int64_t c = 1; c < label_channels; ++c)
      for (std::int64_t i = 0; i < n; ++i) fg[static_cast<std::size_t>(i)] |= label[c * n + i] != 0;
  }
  std::vector<std::uint8_t> cls(static_cast<std::size_t>(n), 2);
  if (use_image) {
    std::fill(cls.begin(), cls.end(), 0);
    // MONAI compares in the image's dtype: float32 image > threshold (the threshold rounded to float32 by torch).
    const float t = static_cast<float>(image_threshold);
    for (std::int64_t c = 0; c < image_channels; ++c)
      for (std::int64_t i = 0; i < n; ++i)
        if (image[c * n + i] > t) cls[static_cast<std::size_t>(i)] = 2;
  }
  for (std::int64_t i = 0; i < n; ++i)
    if (fg[static_cast<std::size_t>(i)]) cls[static_cast<std::size_t>(i)] = 1;
  return cls;
}

CropCentres crop_centres(const RandCropPosNegStep& step, const Sample& s, const data::LabelMap& map) {
  if (!s.label) throw Error("rand_crop_by_pos_neg_label needs a label (its foreground chooses the crop centres)");
  if (s.label->size != s.image.size)
    throw Error("rand_crop_by_pos_neg_label: the label grid differs from the image grid (image and label affines disagree)");
  return CropCentres(s.image.size, crop_classes(s.image.size, s.label->data.data(), s.label->channels, map, s.image.data.data(), s.image.channels,
                                                step.image_threshold, step.use_image));
}

PosNegDraw draw_pos_neg_crop(const RandCropPosNegStep& step, const CropCentres& centres, RandomSource& rng, int slot) {
  const Shape3& shape = centres.size();
  Shape3 roi{};
  for (int a = 0; a < 3; ++a) roi[a] = step.roi[a] > 0 ? step.roi[a] : shape[a];  // fall_back_tuple
  Shape3 valid_size = roi;
  for (int a = 0; a < 3; ++a)
    if (shape[a] < roi[a]) {
      if (!step.allow_smaller)
        throw Error(fmt::format("rand_crop_by_pos_neg_label: roi {}x{}x{} is larger than the volume {}x{}x{} (set \"allow_smaller\": true to keep "
                                "such axes whole)",
                                roi[0], roi[1], roi[2], shape[0], shape[1], shape[2]));
      valid_size[a] = shape[a];
    }
  double pos_ratio = step.pos / (step.pos + step.neg);
  if (centres.foreground() == 0) pos_ratio = 0;
  else if (centres.background() == 0) pos_ratio = 1;
  PosNegDraw d;
  d.foreground = rng.rand(slot, Stream::kInner) < pos_ratio;
  const std::int64_t count = d.foreground ? centres.foreground() : centres.background();
  const std::int64_t k = rng.randint(slot, Stream::kInner, 0, count);
  std::int64_t flat = d.foreground ? centres.foreground_at(k) : centres.background_at(k);
  Shape3 c{};
  c[2] = flat % shape[2];
  flat /= shape[2];
  c[1] = flat % shape[1];
  c[0] = flat / shape[1];
  for (int a = 0; a < 3; ++a) {
    // correct_crop_centers: [size // 2, uint16(shape + 1 - size / 2)) ...
    const std::int64_t valid_start = valid_size[a] / 2;
    auto valid_end = static_cast<std::int64_t>(static_cast<std::uint16_t>(static_cast<double>(shape[a] + 1) - static_cast<double>(valid_size[a]) / 2.0));
    if (valid_start == valid_end) ++valid_end;
    d.center[a] = std::min(std::max(c[a], valid_start), valid_end - 1);
    // SpatialCrop(roi_center, roi_size): start max(center - roi // 2, 0), end start + roi, clipped by slicing.
    d.box.start[a] = std::max<std::int64_t>(d.center[a] - roi[a] / 2, 0);
    d.box.size[a] = std::min(roi[a], shape[a] - d.box.start[a]);
  }
  return d;
}

}  // namespace segscale::transforms
