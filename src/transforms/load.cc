#include "transforms/load.h"

#include <fmt/format.h>

#include "io/nifti_image.h"
#include "util/error.h"

namespace segscale::transforms {
namespace {

// Disk layout (x fastest) of one channel -> MONAI layout (z fastest), in cache-friendly tiles.
template <typename T>
void transpose_xyz_to_zyx(const T* src, T* dst, std::int64_t X, std::int64_t Y, std::int64_t Z) {
  constexpr std::int64_t B = 32;
  for (std::int64_t y = 0; y < Y; ++y)
    for (std::int64_t x0 = 0; x0 < X; x0 += B)
      for (std::int64_t z0 = 0; z0 < Z; z0 += B) {
        std::int64_t x1 = std::min(X, x0 + B), z1 = std::min(Z, z0 + B);
        for (std::int64_t x = x0; x < x1; ++x) {
          T* d = dst + (x * Y + y) * Z;
          const T* s = src + x + X * y;
          for (std::int64_t z = z0; z < z1; ++z) d[z] = s[X * Y * z];
        }
      }
}

Shape3 spatial_of(const io::NiftiHeader& h) {
  Shape3 s{1, 1, 1};
  for (int i = 0; i < std::min(3, h.ndim()); ++i) s[i] = h.dim[i + 1];
  return s;
}

}  // namespace

Volume load_image(const std::vector<std::filesystem::path>& files) {
  if (files.empty()) throw Error("load_image: no image files given");
  Volume out;
  std::vector<float> scratch;
  for (std::size_t f = 0; f < files.size(); ++f) {
    io::NiftiImage img = io::read_nifti(files[f]);
    const auto& h = img.header;
    Shape3 s = spatial_of(h);
    std::int64_t ch = static_cast<std::int64_t>(h.voxel_count()) / (s[0] * s[1] * s[2]);
    if (f == 0) {
      out.size = s;
      out.affine = img.affine();
      out.channels = 0;
    } else {
      if (s != out.size)
        throw error_at(files[f].string(), fmt::format("shape {}x{}x{} differs from {}x{}x{} of {}", s[0], s[1], s[2], out.size[0],
                                                      out.size[1], out.size[2], files[0].string()));
      if (max_abs_diff(img.affine(), out.affine) > 1e-3)
        throw error_at(files[f].string(), "affine differs from " + files[0].string() + " (modalities not co-registered)");
    }
    scratch.resize(h.voxel_count());
    io::to_float32(h, img.data(), scratch.data());
    const std::int64_t n = s[0] * s[1] * s[2];
    out.data.resize(static_cast<std::size_t>((out.channels + ch) * n));
    for (std::int64_t c = 0; c < ch; ++c)
      transpose_xyz_to_zyx(scratch.data() + c * n, out.data.data() + (out.channels + c) * n, s[0], s[1], s[2]);
    out.channels += ch;
  }
  return out;
}

LabelVolume load_label(const std::filesystem::path& file, const data::LabelMap& map) {
  io::NiftiImage img = io::read_nifti(file);
  const auto& h = img.header;
  Shape3 s = spatial_of(h);
  if (static_cast<std::int64_t>(h.voxel_count()) != s[0] * s[1] * s[2])
    throw error_at(file.string(), fmt::format("label has {} dimensions, expected a 3-D label map", h.ndim()));
  auto values = io::to_float32(img);
  data::count_and_check_labels(values.data(), values.size(), map, file.string());
  std::vector<std::uint8_t> bytes(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) bytes[i] = static_cast<std::uint8_t>(values[i]);
  LabelVolume out = LabelVolume::make(1, s, img.affine());
  transpose_xyz_to_zyx(bytes.data(), out.data.data(), s[0], s[1], s[2]);
  return out;
}

}  // namespace segscale::transforms
