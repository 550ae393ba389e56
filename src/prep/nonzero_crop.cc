#include "prep/nonzero_crop.h"

#include <algorithm>

namespace segscale::prep {

std::vector<std::uint8_t> nonzero_mask(std::span<const float* const> channels, const Shape& shape) {
  const std::size_t n = static_cast<std::size_t>(voxels(shape));
  std::vector<std::uint8_t> mask(n, 0);
  for (const float* c : channels)
    for (std::size_t i = 0; i < n; ++i) mask[i] |= c[i] != 0.0f;
  // binary_fill_holes: flood the background from every border voxel through face neighbours; background
  // the flood does not reach is a hole and joins the mask.
  std::vector<std::uint8_t> outside(n, 0);
  std::vector<std::int64_t> queue;
  const auto push = [&](std::int64_t i) {
    if (!mask[static_cast<std::size_t>(i)] && !outside[static_cast<std::size_t>(i)]) {
      outside[static_cast<std::size_t>(i)] = 1;
      queue.push_back(i);
    }
  };
  const std::int64_t s0 = shape[0], s1 = shape[1], s2 = shape[2];
  for (std::int64_t a = 0; a < s0; ++a)
    for (std::int64_t b = 0; b < s1; ++b)
      for (std::int64_t c = 0; c < s2; ++c)
        if (a == 0 || b == 0 || c == 0 || a == s0 - 1 || b == s1 - 1 || c == s2 - 1) push((a * s1 + b) * s2 + c);
  while (!queue.empty()) {
    const std::int64_t i = queue.back();
    queue.pop_back();
    const std::int64_t c = i % s2, b = (i / s2) % s1, a = i / (s1 * s2);
    if (a > 0) push(i - s1 * s2);
    if (a < s0 - 1) push(i + s1 * s2);
    if (b > 0) push(i - s2);
    if (b < s1 - 1) push(i + s2);
    if (c > 0) push(i - 1);
    if (c < s2 - 1) push(i + 1);
  }
  for (std::size_t i = 0; i < n; ++i) mask[i] = !outside[i];
  return mask;
}

Box bounding_box(std::span<const std::uint8_t> mask, const Shape& shape) {
  Box box;
  box.lo = shape;
  box.hi = {0, 0, 0};
  for (std::int64_t a = 0; a < shape[0]; ++a)
    for (std::int64_t b = 0; b < shape[1]; ++b) {
      const std::uint8_t* row = mask.data() + (a * shape[1] + b) * shape[2];
      for (std::int64_t c = 0; c < shape[2]; ++c)
        if (row[c]) {
          const Shape p{a, b, c};
          for (int d = 0; d < 3; ++d) {
            box.lo[d] = std::min(box.lo[d], p[d]);
            box.hi[d] = std::max(box.hi[d], p[d] + 1);
          }
        }
    }
  if (box.hi[0] == 0) return Box{{0, 0, 0}, shape};  // empty mask: the whole array
  return box;
}

}  // namespace segscale::prep
