#pragma once
// NIfTI-1 and NIfTI-2 headers: parsing with full validation, serialisation, and the voxel-to-world affine
// chosen exactly as nibabel chooses it.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/affine.h"

namespace segscale::io {

// NIfTI datatype codes segscale reads and writes.
enum class DType : std::int16_t {
  kUint8 = 2,
  kInt16 = 4,
  kInt32 = 8,
  kFloat32 = 16,
  kFloat64 = 64,
  kInt8 = 256,
  kUint16 = 512,
  kUint32 = 768,
  kInt64 = 1024,
  kUint64 = 1280,
};
std::optional<DType> dtype_from_code(int code);
int dtype_size(DType t);          // bytes per voxel
const char* dtype_name(DType t);  // numpy-style name: "uint8", "int16", ...

inline constexpr std::size_t kNifti1HeaderSize = 348;
inline constexpr std::size_t kNifti2HeaderSize = 540;

struct NiftiHeader {
  int version = 1;          // 1 or 2
  bool big_endian = false;  // byte order of the file (and of its voxel data)
  bool pair = false;        // magic says .hdr/.img pair ("ni1"/"ni2") rather than one file ("n+1"/"n+2")
  std::array<std::int64_t, 8> dim{};  // dim[0] = number of dimensions (1..7); dim[1..] extents
  std::array<double, 8> pixdim{};     // pixdim[0] = qfac; pixdim[1..3] voxel size in mm
  DType datatype = DType::kFloat32;
  std::int64_t vox_offset = 0;  // byte offset of voxel data (in the .img file for pairs)
  double scl_slope = 0, scl_inter = 0;
  double cal_min = 0, cal_max = 0;
  int qform_code = 0, sform_code = 0;
  double quatern_b = 0, quatern_c = 0, quatern_d = 0;
  double qoffset_x = 0, qoffset_y = 0, qoffset_z = 0;
  std::array<std::array<double, 4>, 3> srow{};
  int xyzt_units = 0;
  int intent_code = 0;
  int dim_info = 0;
  std::string descrip;

  int ndim() const { return static_cast<int>(dim[0]); }
  // Extents dim[1..ndim].
  std::vector<std::int64_t> shape() const;
  // Voxel count and data size; validated by parse_nifti_header not to overflow.
  std::uint64_t voxel_count() const;
  std::uint64_t data_bytes() const;

  // The affines as nibabel builds them. qform_affine() throws Error for an invalid quaternion.
  Affine sform_affine() const;
  Affine qform_affine() const;
  Affine base_affine() const;  // from pixdim alone, x flipped, centred (nibabel's get_base_affine)
  // nibabel's get_best_affine: sform if sform_code != 0, else qform if qform_code != 0, else base.
  // A qform with code 0 is ignored whatever its fields say.
  Affine best_affine() const;
  const char* affine_source() const;  // "sform", "qform" or "pixdim"

  // nibabel's get_slope_inter: the scaling to apply, or nullopt when the slope is 0 or not finite.
  std::optional<std::pair<double, double>> scaling() const;
};

// Parses and validates a header from the first bytes of a file (348 for NIfTI-1, 540 for NIfTI-2 are
// enough). `where` names the file in errors. Applies nibabel's silent fixes (single-file vox_offset below
// the header is raised to it; qfac other than +-1 is taken as 1; negative pixdims made positive).
// Throws Error for: too few bytes, unknown sizeof_hdr or magic (with a hint when the bytes look like text
// or HTML), dim[0] outside 1..7, non-positive extents, sizes overflowing 64 bits, unsupported datatypes,
// a negative or non-finite vox_offset, an invalid scl_inter with a valid slope, and a non-finite affine.
NiftiHeader parse_nifti_header(std::span<const std::uint8_t> bytes, const std::string& where);

// Serialises a single-file header (magic n+1/n+2) in hdr.big_endian byte order, followed by the 4-byte
// empty extension block: exactly vox_offset (352 or 544) bytes. Throws Error if a NIfTI-1 header cannot
// hold the extents (use version 2).
std::vector<std::uint8_t> serialize_nifti_header(const NiftiHeader& hdr);

// A header for a new single-file image: shape (1..7 dims), datatype, and an affine stored in both sform
// and (where it is a rotation times zooms, possibly with a flip) qform, with the given code (1 = scanner).
// pixdim[1..3] are the affine's voxel sizes. Chooses NIfTI-2 only when extents exceed NIfTI-1's int16.
NiftiHeader make_nifti_header(const std::vector<std::int64_t>& shape, DType datatype, const Affine& affine,
                              int xform_code = 1);

// The header of a uint8 label volume on the grid of `like` (a scan's): its geometry, codes and affine fields as
// they were, 3-D of `size` (x, y, z), little-endian single file, no scaling, intent or calibration.
NiftiHeader label_header_like(const NiftiHeader& like, const std::array<std::int64_t, 3>& size, const std::string& descrip);

}  // namespace segscale::io
