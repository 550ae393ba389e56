#pragma once
// Reading and writing whole NIfTI images: .nii, .nii.gz, and .hdr/.img pairs (each part optionally .gz).
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "io/file.h"
#include "io/nifti_header.h"

namespace segscale::io {

// A decoded image: header plus voxel bytes in native byte order and disk layout (x fastest, then y, z, t).
struct NiftiImage {
  NiftiHeader header;
  Bytes storage;  // voxel bytes live at [data_offset, data_offset + header.data_bytes())
  std::size_t data_offset = 0;

  std::span<const std::uint8_t> data() const { return {storage.data() + data_offset, header.data_bytes()}; }
  std::span<std::uint8_t> data() { return {storage.data() + data_offset, header.data_bytes()}; }
  Affine affine() const { return header.best_affine(); }
};

// Reads only the header (inflating just its bytes for .gz). Throws Error("<path>: <problem>").
NiftiHeader read_nifti_header(const std::filesystem::path& path);

// Reads header and data. Every problem (missing or empty file, not NIfTI, truncated data, a header that
// claims more data than the file can hold, corrupt gzip) throws Error("<path>: <problem>") before any
// out-of-bounds access. For .gz files at most vox_offset + data bytes are inflated, whatever the stream
// holds beyond them.
NiftiImage read_nifti(const std::filesystem::path& path);

// nibabel's scaling of one stored value to float32 (see to_float32).
struct VoxelScaling {
  bool mul = false, add = false;
  double slope = 1.0, inter = 0.0;
  explicit VoxelScaling(const NiftiHeader& h);
  template <typename T>
  float operator()(T raw) const {
    if (!mul && !add) return static_cast<float>(raw);
    double d = static_cast<double>(raw);
    if (mul) d *= slope;
    if (add) d += inter;
    return static_cast<float>(d);
  }
};

// Calls fn(T{}) with T the C++ type of `t` (uint8_t ... double).
template <typename Fn>
decltype(auto) visit_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::kUint8: return fn(std::uint8_t{});
    case DType::kInt8: return fn(std::int8_t{});
    case DType::kInt16: return fn(std::int16_t{});
    case DType::kUint16: return fn(std::uint16_t{});
    case DType::kInt32: return fn(std::int32_t{});
    case DType::kUint32: return fn(std::uint32_t{});
    case DType::kInt64: return fn(std::int64_t{});
    case DType::kUint64: return fn(std::uint64_t{});
    case DType::kFloat32: return fn(float{});
    case DType::kFloat64: return fn(double{});
  }
  return fn(std::uint8_t{});
}

// Decodes a single-file image (.nii or .nii.gz content) held in memory; `where` names it in errors. Same
// checks as read_nifti. The entry point of the NIfTI fuzz target.
NiftiImage decode_nifti(Bytes file, const std::string& where);

// Voxel values as float32 in disk layout, exactly as nibabel's np.asanyarray(img.dataobj).astype(float32):
// scl_slope/scl_inter applied in float64 (multiply, then add; each skipped at its identity value) when the
// slope is finite and non-zero, then rounded once to float32. `out` must hold voxel_count() floats.
void to_float32(const NiftiHeader& header, std::span<const std::uint8_t> native_data, float* out);
std::vector<float> to_float32(const NiftiImage& image);

// Writes a single-file image (.nii, or gzip-compressed when the path ends in .gz) atomically. `native_data`
// holds header.data_bytes() bytes in native byte order; they are byte-swapped on the way out when
// header.big_endian is set. The header's vox_offset is ignored (data follows the header directly).
void write_nifti(const std::filesystem::path& path, const NiftiHeader& header, std::span<const std::uint8_t> native_data,
                 int gzip_level = 4);

// Reverses the byte order of every element of `data` (elements of `elem_size` bytes) in place.
void byteswap_inplace(std::span<std::uint8_t> data, int elem_size);

}  // namespace segscale::io
