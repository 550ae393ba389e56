#include "transforms/nnunet_targets.h"

#include <algorithm>
#include <cmath>

namespace segscale::transforms {

template <typename T>
void nnunet_mirror(T* data, int channels, const Extent3& shape, const std::vector<int>& axes) {
  const std::int64_t n = shape[0] * shape[1] * shape[2];
  std::vector<T> tmp(static_cast<std::size_t>(n));
  for (int c = 0; c < channels; ++c) {
    T* v = data + c * n;
    for (int axis : axes) {
      std::size_t o = 0;
      for (std::int64_t i = 0; i < shape[0]; ++i)
        for (std::int64_t j = 0; j < shape[1]; ++j)
          for (std::int64_t k = 0; k < shape[2]; ++k) {
            const std::int64_t a = axis == 0 ? shape[0] - 1 - i : i, b = axis == 1 ? shape[1] - 1 - j : j, cc = axis == 2 ? shape[2] - 1 - k : k;
            tmp[o++] = v[(a * shape[1] + b) * shape[2] + cc];
          }
      std::copy(tmp.begin(), tmp.end(), v);
    }
  }
}
template void nnunet_mirror<float>(float*, int, const Extent3&, const std::vector<int>&);
template void nnunet_mirror<std::int16_t>(std::int16_t*, int, const Extent3&, const std::vector<int>&);

void nnunet_mask_image(float* image, int channels, const std::int16_t* seg, const Extent3& shape, const std::vector<bool>& apply_to_channel) {
  const std::int64_t n = shape[0] * shape[1] * shape[2];
  for (int c = 0; c < channels; ++c)
    if (apply_to_channel.at(static_cast<std::size_t>(c)))
      for (std::int64_t i = 0; i < n; ++i)
        if (seg[i] < 0) image[c * n + i] = 0.0f;
}

void nnunet_remove_label(std::int16_t* seg, std::size_t n, std::int16_t label, std::int16_t set_to) {
  for (std::size_t i = 0; i < n; ++i)
    if (seg[i] == label) seg[i] = set_to;
}

std::vector<std::uint8_t> nnunet_regions(const std::int16_t* seg, std::size_t n, const std::vector<std::vector<int>>& regions) {
  std::vector<std::uint8_t> out(regions.size() * n, 0);
  for (std::size_t r = 0; r < regions.size(); ++r) {
    std::vector<std::uint8_t> member(65536, 0);  // by label value: in the region or not
    for (int l : regions[r])
      if (l >= -32768 && l <= 32767) member[static_cast<std::uint16_t>(l + 32768)] = 1;
    std::uint8_t* o = out.data() + r * n;
    for (std::size_t i = 0; i < n; ++i) o[i] = member[static_cast<std::uint16_t>(seg[i] + 32768)];
  }
  return out;
}

template <typename T>
std::vector<T> nnunet_downsample(const T* data, int channels, const Extent3& shape, const std::array<double, 3>& scale, Extent3& out_shape) {
  std::array<std::vector<std::int64_t>, 3> pick;
  for (int d = 0; d < 3; ++d) {
    out_shape[d] = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(shape[d]) * scale[d]));
    const float s = static_cast<float>(shape[d]) / static_cast<float>(out_shape[d]);
    for (std::int64_t i = 0; i < out_shape[d]; ++i)
      pick[d].push_back(std::min(static_cast<std::int64_t>(std::floor((static_cast<float>(i) + 0.5f) * s)), shape[d] - 1));
  }
  const std::int64_t n = shape[0] * shape[1] * shape[2];
  std::vector<T> out;
  out.reserve(static_cast<std::size_t>(channels * out_shape[0] * out_shape[1] * out_shape[2]));
  for (int c = 0; c < channels; ++c)
    for (auto i : pick[0])
      for (auto j : pick[1])
        for (auto k : pick[2]) out.push_back(data[c * n + (i * shape[1] + j) * shape[2] + k]);
  return out;
}
template std::vector<std::int16_t> nnunet_downsample<std::int16_t>(const std::int16_t*, int, const Extent3&, const std::array<double, 3>&, Extent3&);
template std::vector<std::uint8_t> nnunet_downsample<std::uint8_t>(const std::uint8_t*, int, const Extent3&, const std::array<double, 3>&, Extent3&);

}  // namespace segscale::transforms
