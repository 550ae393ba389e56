#pragma once
// nnU-Net's crop to nonzero (nnunetv2 2.8.1 preprocessing/cropping/cropping.py): the mask of voxels where any
// channel is nonzero, holes filled as scipy.ndimage.binary_fill_holes fills them (background not reachable from
// the border through face neighbours), and that mask's bounding box. Arrays are C-ordered (a0 slowest), i.e. a
// NIfTI volume's disk layout read as nnU-Net reads it: a0 = z, a1 = y, a2 = x. libtorch-free.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace segscale::prep {

using Shape = std::array<std::int64_t, 3>;

struct Box {
  Shape lo{}, hi{};  // half-open [lo, hi) per axis
  Shape size() const { return {hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]}; }
};

inline std::int64_t voxels(const Shape& s) { return s[0] * s[1] * s[2]; }

// 1 where any channel is nonzero (exact compare) or inside a hole of that set, else 0.
std::vector<std::uint8_t> nonzero_mask(std::span<const float* const> channels, const Shape& shape);

// The bounding box of the mask's ones; the whole array when there are none (acvl_utils' get_bbox_from_mask).
Box bounding_box(std::span<const std::uint8_t> mask, const Shape& shape);

// Copies the box out of a C-ordered array.
template <typename T>
std::vector<T> crop(std::span<const T> array, const Shape& shape, const Box& box) {
  const Shape s = box.size();
  std::vector<T> out(static_cast<std::size_t>(voxels(s)));
  std::size_t o = 0;
  for (std::int64_t i = box.lo[0]; i < box.hi[0]; ++i)
    for (std::int64_t j = box.lo[1]; j < box.hi[1]; ++j) {
      const T* row = array.data() + (i * shape[1] + j) * shape[2];
      for (std::int64_t k = box.lo[2]; k < box.hi[2]; ++k) out[o++] = row[k];
    }
  return out;
}

}  // namespace segscale::prep
