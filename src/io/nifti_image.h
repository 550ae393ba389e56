#pragma once
// Reading and writing whole NIfTI images: .nii, .nii.gz, and .hdr/.img pairs (each part optionally .gz).
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "io/nifti_header.h"

namespace segscale::io {

// A decoded image: header plus voxel bytes in native byte order and disk layout (x fastest, then y, z, t).
struct NiftiImage {
  NiftiHeader header;
  std::vector<std::uint8_t> storage;  // voxel bytes live at [data_offset, data_offset + header.data_bytes())
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
