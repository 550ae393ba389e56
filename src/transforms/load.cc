#include "transforms/load.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>

#include "io/nifti_image.h"
#include "util/error.h"

namespace segscale::transforms {
namespace {

// One channel from disk layout (x fastest, stored type T) to MONAI layout (z fastest, float32) in one pass:
// for one y at a time (its X rows of Z outputs stay in cache), blocks of 16 z-planes are read as 16
// contiguous x-rows and written as runs of 16 along z.
template <typename T, typename Out, typename Convert>
void convert_transpose(const std::uint8_t* raw, Out* dst, std::int64_t X, std::int64_t Y, std::int64_t Z, const Convert& convert) {
  constexpr std::int64_t B = 16;
  T row[B][256];
  for (std::int64_t y = 0; y < Y; ++y)
    for (std::int64_t z0 = 0; z0 < Z; z0 += B) {
      const std::int64_t zn = std::min(B, Z - z0);
      for (std::int64_t x0 = 0; x0 < X; x0 += 256) {
        const std::int64_t xn = std::min<std::int64_t>(256, X - x0);
        for (std::int64_t dz = 0; dz < zn; ++dz)
          std::memcpy(row[dz], raw + sizeof(T) * static_cast<std::size_t>(x0 + X * (y + Y * (z0 + dz))), sizeof(T) * xn);
        for (std::int64_t dx = 0; dx < xn; ++dx) {
          Out* d = dst + ((x0 + dx) * Y + y) * Z + z0;
          for (std::int64_t dz = 0; dz < zn; ++dz) d[dz] = convert(row[dz][dx]);
        }
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
  for (std::size_t f = 0; f < files.size(); ++f) {
    io::NiftiImage img = io::read_nifti(files[f]);
    const auto& h = img.header;
    Shape3 s = spatial_of(h);
    const std::int64_t n = s[0] * s[1] * s[2];
    const std::int64_t ch = static_cast<std::int64_t>(h.voxel_count()) / n;
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
    out.data.resize(static_cast<std::size_t>((out.channels + ch) * n));
    const io::VoxelScaling scale(h);
    io::visit_dtype(h.datatype, [&](auto tag) {
      using T = decltype(tag);
      for (std::int64_t c = 0; c < ch; ++c) {
        const std::uint8_t* src = img.data().data() + static_cast<std::size_t>(c * n) * sizeof(T);
        float* dst = out.data.data() + (out.channels + c) * n;
        if (scale.mul || scale.add)
          convert_transpose<T>(src, dst, s[0], s[1], s[2], [&](T v) { return scale(v); });
        else  // the common case, kept free of per-voxel branches
          convert_transpose<T>(src, dst, s[0], s[1], s[2], [](T v) { return static_cast<float>(v); });
      }
    });
    // NaN or Inf would spread through resampling and poison the normalisation statistics: refuse them here.
    std::uint64_t bad = 0;
    const float* first = out.data.data() + out.channels * n;
    for (std::int64_t i = 0; i < ch * n; ++i) bad += !std::isfinite(first[i]);
    if (bad)
      throw error_at(files[f].string(), fmt::format("{} NaN/Inf voxels; segscale does not resample or normalise non-finite values "
                                                    "(fix the file, or leave the case out with --skip-bad)", bad));
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
  LabelVolume out = LabelVolume::make(1, s, img.affine());
  const io::VoxelScaling scale(h);
  if (h.datatype == io::DType::kUint8 && !scale.mul && !scale.add) {
    // The common case: values are bytes already; check them with a 256-entry histogram.
    std::array<std::uint64_t, 256> hist{};
    for (std::uint8_t v : img.data()) ++hist[v];
    for (int v = 0; v < 256; ++v)
      if (hist[v] && !map.is_known(v))
        throw error_at(file.string(), fmt::format("label value {} ({} voxels) is not in preset {} (allowed: {}); wrong --label-map?", v,
                                                  hist[v], map.name, fmt::join(map.known_values(), ",")));
    convert_transpose<std::uint8_t>(img.data().data(), out.data.data(), s[0], s[1], s[2], [](std::uint8_t v) { return v; });
    return out;
  }
  auto values = io::to_float32(img);
  data::count_and_check_labels(values.data(), values.size(), map, file.string());
  convert_transpose<float>(reinterpret_cast<const std::uint8_t*>(values.data()), out.data.data(), s[0], s[1], s[2],
                           [](float v) { return static_cast<std::uint8_t>(v); });
  return out;
}

}  // namespace segscale::transforms
