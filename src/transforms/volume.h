#pragma once
// The volume type every transform takes and returns: MONAI's memory layout [C, X, Y, Z] with z fastest,
// so arrays and weights interchange with MONAI unchanged, plus the float64 voxel-to-world affine.
#include <array>
#include <cstdint>
#include <vector>

#include "io/affine.h"
#include "util/default_init.h"

namespace segscale::transforms {

using Shape3 = std::array<std::int64_t, 3>;

template <typename T>
struct Grid {
  std::int64_t channels = 0;
  Shape3 size{};          // X, Y, Z
  UninitVector<T> data;   // channels * X * Y * Z values, index ((c * X + x) * Y + y) * Z + z (make() leaves them unset)
  Affine affine;          // voxel (x, y, z) -> world (RAS mm)

  std::int64_t voxels() const { return size[0] * size[1] * size[2]; }
  T* channel(std::int64_t c) { return data.data() + c * voxels(); }
  const T* channel(std::int64_t c) const { return data.data() + c * voxels(); }
  static Grid make(std::int64_t channels, const Shape3& size, const Affine& affine) {
    Grid g;
    g.channels = channels;
    g.size = size;
    g.affine = affine;
    g.data.resize(static_cast<std::size_t>(channels * size[0] * size[1] * size[2]));
    return g;
  }
};

// The image: float32 channels (modalities).
using Volume = Grid<float>;
// The label while it travels through the chain: one channel of raw label values (e.g. 0,1,2,4). Every
// spatial step moves whole voxels (nearest neighbour, crop, flip, permutation), so resampling the label map
// and expanding it to TC/WT/ET channels at the end equals MONAI's expanding first and resampling three
// channels, at a twelfth of the memory traffic.
using LabelVolume = Grid<std::uint8_t>;

}  // namespace segscale::transforms
