#include "io/nifti_header.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "util/error.h"

namespace segscale::io {
namespace {

// Reads little- or big-endian scalars at byte offsets of a header buffer.
class FieldReader {
 public:
  FieldReader(std::span<const std::uint8_t> b, bool big_endian) : b_(b), swap_(big_endian != (std::endian::native == std::endian::big)) {}
  template <typename T>
  T get(std::size_t off) const {
    T v;
    std::uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, b_.data() + off, sizeof(T));
    if (swap_) std::reverse(tmp, tmp + sizeof(T));
    std::memcpy(&v, tmp, sizeof(T));
    return v;
  }
  std::string str(std::size_t off, std::size_t n) const {
    const char* p = reinterpret_cast<const char*>(b_.data() + off);
    return std::string(p, strnlen(p, n));
  }

 private:
  std::span<const std::uint8_t> b_;
  bool swap_;
};

class FieldWriter {
 public:
  FieldWriter(std::vector<std::uint8_t>& b, bool big_endian) : b_(b), swap_(big_endian != (std::endian::native == std::endian::big)) {}
  template <typename T>
  void put(std::size_t off, T v) {
    std::uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    if (swap_) std::reverse(tmp, tmp + sizeof(T));
    std::memcpy(b_.data() + off, tmp, sizeof(T));
  }
  void str(std::size_t off, std::size_t n, const std::string& s) {
    std::memcpy(b_.data() + off, s.data(), std::min(n - 1, s.size()));
  }

 private:
  std::vector<std::uint8_t>& b_;
  bool swap_;
};

// A short printable rendering of the first bytes, for "this is not NIfTI" messages.
std::string describe_bytes(std::span<const std::uint8_t> b) {
  std::size_t n = std::min<std::size_t>(b.size(), 16);
  bool text = n > 0;
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char c = b[i];
    if (c >= 0x20 && c < 0x7f) s += static_cast<char>(c);
    else if (c == '\n' || c == '\r' || c == '\t') s += ' ';
    else text = false;
  }
  if (text) {
    std::string hint = (s.find('<') != std::string::npos) ? " (looks like HTML/XML text: a web page saved under a NIfTI name?)"
                                                          : " (looks like text)";
    return fmt::format("starts with \"{}\"{}", s, hint);
  }
  std::string hex;
  for (std::size_t i = 0; i < std::min<std::size_t>(n, 8); ++i) hex += fmt::format("{:02x} ", b[i]);
  if (!hex.empty()) hex.pop_back();
  return "starts with bytes " + hex;
}

double quaternion_threshold(int version) {
  // nibabel: -3 * eps of the header's float type
  return version == 1 ? -3.0 * std::numeric_limits<float>::epsilon() : -3.0 * std::numeric_limits<double>::epsilon();
}

bool finite_affine(const Affine& a) {
  for (auto& row : a.m)
    for (double v : row)
      if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

std::optional<DType> dtype_from_code(int code) {
  switch (code) {
    case 2: case 4: case 8: case 16: case 64: case 256: case 512: case 768: case 1024: case 1280:
      return static_cast<DType>(code);
    default:
      return std::nullopt;
  }
}

int dtype_size(DType t) {
  switch (t) {
    case DType::kUint8: case DType::kInt8: return 1;
    case DType::kInt16: case DType::kUint16: return 2;
    case DType::kInt32: case DType::kUint32: case DType::kFloat32: return 4;
    case DType::kFloat64: case DType::kInt64: case DType::kUint64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kUint8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kInt16: return "int16";
    case DType::kUint16: return "uint16";
    case DType::kInt32: return "int32";
    case DType::kUint32: return "uint32";
    case DType::kInt64: return "int64";
    case DType::kUint64: return "uint64";
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
  }
  return "?";
}

std::vector<std::int64_t> NiftiHeader::shape() const { return {dim.begin() + 1, dim.begin() + 1 + ndim()}; }

std::uint64_t NiftiHeader::voxel_count() const {
  std::uint64_t n = 1;
  for (int i = 1; i <= ndim(); ++i) n *= static_cast<std::uint64_t>(dim[i]);
  return n;
}

std::uint64_t NiftiHeader::data_bytes() const { return voxel_count() * static_cast<std::uint64_t>(dtype_size(datatype)); }

Affine NiftiHeader::sform_affine() const {
  Affine a;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) a.m[r][c] = srow[r][c];
  return a;
}

Affine NiftiHeader::qform_affine() const {
  double b = quatern_b, c = quatern_c, d = quatern_d;
  double w2 = 1.0 - (b * b + c * c + d * d);
  double w;
  if (w2 < 0) {
    if (w2 < quaternion_threshold(version))
      throw Error(fmt::format("invalid qform quaternion (b,c,d) = ({}, {}, {}): b^2+c^2+d^2 > 1", b, c, d));
    w = 0;
  } else {
    w = std::sqrt(w2);
  }
  // nibabel's quat2mat
  double nq = w * w + b * b + c * c + d * d;
  double r[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  if (nq >= std::numeric_limits<double>::epsilon()) {
    double s = 2.0 / nq;
    double X = b * s, Y = c * s, Z = d * s;
    double wX = w * X, wY = w * Y, wZ = w * Z;
    double xX = b * X, xY = b * Y, xZ = b * Z;
    double yY = c * Y, yZ = c * Z, zZ = d * Z;
    double m[3][3] = {{1.0 - (yY + zZ), xY - wZ, xZ + wY}, {xY + wZ, 1.0 - (xX + zZ), yZ - wX}, {xZ - wY, yZ + wX, 1.0 - (xX + yY)}};
    std::memcpy(r, m, sizeof r);
  }
  double vox[3] = {pixdim[1], pixdim[2], pixdim[3]};
  double qfac = (pixdim[0] == -1.0) ? -1.0 : 1.0;
  vox[2] *= qfac;
  Affine a;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) a.m[i][j] = r[i][j] * vox[j];
  a.m[0][3] = qoffset_x;
  a.m[1][3] = qoffset_y;
  a.m[2][3] = qoffset_z;
  return a;
}

Affine NiftiHeader::base_affine() const {
  // nibabel shape_zoom_affine(shape[:3], zooms[:3], x_flip=True), padding missing axes with 1
  double n[3] = {1, 1, 1}, z[3] = {1, 1, 1};
  for (int i = 0; i < std::min(3, ndim()); ++i) {
    n[i] = static_cast<double>(dim[i + 1]);
    z[i] = pixdim[i + 1];
  }
  z[0] = -z[0];
  Affine a;
  for (int i = 0; i < 3; ++i) {
    a.m[i][i] = z[i];
    a.m[i][3] = -((n[i] - 1) / 2.0) * z[i];
  }
  return a;
}

Affine NiftiHeader::best_affine() const {
  if (sform_code != 0) return sform_affine();
  if (qform_code != 0) return qform_affine();
  return base_affine();
}

const char* NiftiHeader::affine_source() const {
  return sform_code != 0 ? "sform" : (qform_code != 0 ? "qform" : "pixdim");
}

std::optional<std::pair<double, double>> NiftiHeader::scaling() const {
  if (scl_slope == 0 || !std::isfinite(scl_slope)) return std::nullopt;
  return std::make_pair(scl_slope, scl_inter);
}

namespace {

// Where NIfTI-1 and NIfTI-2 keep the same run of fields, in the same order, only wider in NIfTI-2 (Real: float or
// double, Code: int16 or int32): scl_slope, scl_inter; cal_max, cal_min; descrip[80]; qform_code, sform_code;
// quatern_b..qoffset_z then srow_x, srow_y, srow_z.
struct SharedFieldOffsets {
  int scaling, calibration, descrip, codes, quatern;
};

template <typename Real, typename Code>
void read_scaling_and_orientation(const FieldReader& f, const SharedFieldOffsets& at, NiftiHeader& h) {
  constexpr int r = sizeof(Real);
  h.scl_slope = f.get<Real>(at.scaling);
  h.scl_inter = f.get<Real>(at.scaling + r);
  h.cal_max = f.get<Real>(at.calibration);
  h.cal_min = f.get<Real>(at.calibration + r);
  h.descrip = f.str(at.descrip, 80);
  h.qform_code = f.get<Code>(at.codes);
  h.sform_code = f.get<Code>(at.codes + static_cast<int>(sizeof(Code)));
  double* quatern[] = {&h.quatern_b, &h.quatern_c, &h.quatern_d, &h.qoffset_x, &h.qoffset_y, &h.qoffset_z};
  for (int k = 0; k < 6; ++k) *quatern[k] = f.get<Real>(at.quatern + k * r);
  for (int row = 0; row < 3; ++row)
    for (int c = 0; c < 4; ++c) h.srow[row][c] = f.get<Real>(at.quatern + (6 + 4 * row + c) * r);
}

}  // namespace

NiftiHeader parse_nifti_header(std::span<const std::uint8_t> bytes, const std::string& where) {
  if (bytes.empty()) throw error_at(where, "empty file (0 bytes), not a NIfTI image");
  if (bytes.size() < 4) throw error_at(where, fmt::format("file too short ({} bytes) to be NIfTI", bytes.size()));
  NiftiHeader h;
  std::int32_t le = FieldReader(bytes, false).get<std::int32_t>(0);
  std::int32_t be = FieldReader(bytes, true).get<std::int32_t>(0);
  if (le == 348 || be == 348) {
    h.version = 1;
    h.big_endian = (le != 348);
  } else if (le == 540 || be == 540) {
    h.version = 2;
    h.big_endian = (le != 540);
  } else {
    throw error_at(where, fmt::format("not a NIfTI file: sizeof_hdr is {} (expected 348 or 540); {}", le, describe_bytes(bytes)));
  }
  const std::size_t hsize = h.version == 1 ? kNifti1HeaderSize : kNifti2HeaderSize;
  if (bytes.size() < hsize)
    throw error_at(where, fmt::format("truncated NIfTI-{} header ({} of {} bytes)", h.version, bytes.size(), hsize));
  FieldReader f(bytes, h.big_endian);

  int datatype_code;
  double vox_offset;
  if (h.version == 1) {
    const char* magic = reinterpret_cast<const char*>(bytes.data() + 344);
    if (std::memcmp(magic, "n+1\0", 4) == 0) h.pair = false;
    else if (std::memcmp(magic, "ni1\0", 4) == 0) h.pair = true;
    else throw error_at(where, "bad NIfTI-1 magic (expected \"n+1\" or \"ni1\"); an Analyze 7.5 file or a corrupt header");
    for (int i = 0; i < 8; ++i) h.dim[i] = f.get<std::int16_t>(40 + 2 * i);
    for (int i = 0; i < 8; ++i) h.pixdim[i] = f.get<float>(76 + 4 * i);
    datatype_code = f.get<std::int16_t>(70);
    vox_offset = f.get<float>(108);
    read_scaling_and_orientation<float, std::int16_t>(f, {112, 124, 148, 252, 256}, h);
    h.xyzt_units = static_cast<std::uint8_t>(bytes[123]);
    h.intent_code = f.get<std::int16_t>(68);
    h.dim_info = bytes[39];
  } else {
    const char* magic = reinterpret_cast<const char*>(bytes.data() + 4);
    if (std::memcmp(magic, "n+2\0\r\n\032\n", 8) == 0) h.pair = false;
    else if (std::memcmp(magic, "ni2\0\r\n\032\n", 8) == 0) h.pair = true;
    else throw error_at(where, "bad NIfTI-2 magic (expected \"n+2\" or \"ni2\" followed by \\r\\n\\032\\n)");
    datatype_code = f.get<std::int16_t>(12);
    for (int i = 0; i < 8; ++i) h.dim[i] = f.get<std::int64_t>(16 + 8 * i);
    for (int i = 0; i < 8; ++i) h.pixdim[i] = f.get<double>(104 + 8 * i);
    std::int64_t off = f.get<std::int64_t>(168);
    if (off < 0) throw error_at(where, fmt::format("negative vox_offset {}", off));
    vox_offset = static_cast<double>(off);
    read_scaling_and_orientation<double, std::int32_t>(f, {176, 192, 240, 344, 352}, h);
    h.xyzt_units = f.get<std::int32_t>(500);
    h.intent_code = f.get<std::int32_t>(504);
    h.dim_info = bytes[524];
  }

  if (h.dim[0] < 1 || h.dim[0] > 7)
    throw error_at(where, fmt::format("dim[0] = {} (number of dimensions must be 1..7)", h.dim[0]));
  std::uint64_t count = 1;
  for (int i = 1; i <= h.ndim(); ++i) {
    if (h.dim[i] < 1) throw error_at(where, fmt::format("dim[{}] = {} (extents must be >= 1)", i, h.dim[i]));
    if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(h.dim[i]), &count))
      throw error_at(where, "dimensions multiply past 64 bits (corrupt header)");
  }
  auto dt = dtype_from_code(datatype_code);
  if (!dt) throw error_at(where, fmt::format("unsupported NIfTI datatype code {} (supported: uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64)", datatype_code));
  h.datatype = *dt;
  std::uint64_t nbytes;
  if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(dtype_size(h.datatype)), &nbytes))
    throw error_at(where, "data size overflows 64 bits (corrupt header)");

  if (!std::isfinite(vox_offset)) throw error_at(where, "vox_offset is not a finite number");
  if (vox_offset < 0) throw error_at(where, fmt::format("negative vox_offset {}", vox_offset));
  if (vox_offset >= 9.2e18) throw error_at(where, fmt::format("vox_offset {} is absurdly large", vox_offset));
  h.vox_offset = static_cast<std::int64_t>(vox_offset);
  const std::int64_t min_offset = h.version == 1 ? 352 : 544;
  if (!h.pair && h.vox_offset < min_offset) h.vox_offset = min_offset;  // nibabel's fix
  std::uint64_t end;
  if (__builtin_add_overflow(static_cast<std::uint64_t>(h.vox_offset), nbytes, &end))
    throw error_at(where, "vox_offset + data size overflows 64 bits (corrupt header)");

  // nibabel's silent fixes: qfac must be +-1 (else 1), pixdims non-negative.
  if (h.pixdim[0] != 1.0 && h.pixdim[0] != -1.0) h.pixdim[0] = 1.0;
  for (int i = 1; i < 8; ++i) h.pixdim[i] = std::abs(h.pixdim[i]);

  if (h.scaling() && !std::isfinite(h.scl_inter))
    throw error_at(where, fmt::format("valid scl_slope {} but invalid scl_inter {}", h.scl_slope, h.scl_inter));
  Affine a;
  try {
    a = h.best_affine();
  } catch (const Error& e) {
    throw error_at(where, e.what());
  }
  if (!finite_affine(a)) throw error_at(where, fmt::format("the {} affine has non-finite values", h.affine_source()));
  return h;
}

std::vector<std::uint8_t> serialize_nifti_header(const NiftiHeader& h) {
  const bool v1 = h.version == 1;
  const std::size_t hsize = v1 ? kNifti1HeaderSize : kNifti2HeaderSize;
  std::vector<std::uint8_t> b(hsize + 4, 0);  // + empty extension block
  FieldWriter w(b, h.big_endian);
  if (v1) {
    for (int i = 0; i < 8; ++i) {
      if (h.dim[i] > std::numeric_limits<std::int16_t>::max())
        throw Error(fmt::format("NIfTI-1 cannot store extent {} (max 32767); write NIfTI-2", h.dim[i]));
    }
    w.put<std::int32_t>(0, 348);
    b[38] = 'r';  // "regular", as nibabel writes
    b[39] = static_cast<std::uint8_t>(h.dim_info);
    for (int i = 0; i < 8; ++i) w.put<std::int16_t>(40 + 2 * i, static_cast<std::int16_t>(h.dim[i]));
    w.put<std::int16_t>(68, static_cast<std::int16_t>(h.intent_code));
    w.put<std::int16_t>(70, static_cast<std::int16_t>(h.datatype));
    w.put<std::int16_t>(72, static_cast<std::int16_t>(dtype_size(h.datatype) * 8));
    for (int i = 0; i < 8; ++i) w.put<float>(76 + 4 * i, static_cast<float>(h.pixdim[i]));
    w.put<float>(108, static_cast<float>(hsize + 4));
    w.put<float>(112, static_cast<float>(h.scl_slope));
    w.put<float>(116, static_cast<float>(h.scl_inter));
    b[123] = static_cast<std::uint8_t>(h.xyzt_units);
    w.put<float>(124, static_cast<float>(h.cal_max));
    w.put<float>(128, static_cast<float>(h.cal_min));
    w.str(148, 80, h.descrip);
    w.put<std::int16_t>(252, static_cast<std::int16_t>(h.qform_code));
    w.put<std::int16_t>(254, static_cast<std::int16_t>(h.sform_code));
    w.put<float>(256, static_cast<float>(h.quatern_b));
    w.put<float>(260, static_cast<float>(h.quatern_c));
    w.put<float>(264, static_cast<float>(h.quatern_d));
    w.put<float>(268, static_cast<float>(h.qoffset_x));
    w.put<float>(272, static_cast<float>(h.qoffset_y));
    w.put<float>(276, static_cast<float>(h.qoffset_z));
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) w.put<float>(280 + 16 * r + 4 * c, static_cast<float>(h.srow[r][c]));
    std::memcpy(b.data() + 344, "n+1\0", 4);
  } else {
    w.put<std::int32_t>(0, 540);
    std::memcpy(b.data() + 4, "n+2\0\r\n\032\n", 8);
    w.put<std::int16_t>(12, static_cast<std::int16_t>(h.datatype));
    w.put<std::int16_t>(14, static_cast<std::int16_t>(dtype_size(h.datatype) * 8));
    for (int i = 0; i < 8; ++i) w.put<std::int64_t>(16 + 8 * i, h.dim[i]);
    for (int i = 0; i < 8; ++i) w.put<double>(104 + 8 * i, h.pixdim[i]);
    w.put<std::int64_t>(168, static_cast<std::int64_t>(hsize + 4));
    w.put<double>(176, h.scl_slope);
    w.put<double>(184, h.scl_inter);
    w.put<double>(192, h.cal_max);
    w.put<double>(200, h.cal_min);
    w.str(240, 80, h.descrip);
    w.put<std::int32_t>(344, h.qform_code);
    w.put<std::int32_t>(348, h.sform_code);
    w.put<double>(352, h.quatern_b);
    w.put<double>(360, h.quatern_c);
    w.put<double>(368, h.quatern_d);
    w.put<double>(376, h.qoffset_x);
    w.put<double>(384, h.qoffset_y);
    w.put<double>(392, h.qoffset_z);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) w.put<double>(400 + 32 * r + 8 * c, h.srow[r][c]);
    w.put<std::int32_t>(500, h.xyzt_units);
    w.put<std::int32_t>(504, h.intent_code);
    b[524] = static_cast<std::uint8_t>(h.dim_info);
  }
  return b;
}

NiftiHeader make_nifti_header(const std::vector<std::int64_t>& shape, DType datatype, const Affine& affine, int xform_code) {
  if (shape.empty() || shape.size() > 7) throw Error(fmt::format("NIfTI images have 1..7 dimensions, got {}", shape.size()));
  NiftiHeader h;
  h.dim[0] = static_cast<std::int64_t>(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 1) throw Error(fmt::format("NIfTI extents must be >= 1, got {}", shape[i]));
    h.dim[i + 1] = shape[i];
    if (shape[i] > std::numeric_limits<std::int16_t>::max()) h.version = 2;
  }
  for (std::size_t i = shape.size() + 1; i < 8; ++i) h.dim[i] = 1;
  h.datatype = datatype;
  h.vox_offset = h.version == 1 ? 352 : 544;
  h.scl_slope = 1.0;
  h.xyzt_units = 2 | 8;  // mm, seconds
  h.pixdim.fill(1.0);
  auto zooms = voxel_sizes(affine);
  for (int i = 0; i < 3; ++i) h.pixdim[i + 1] = zooms[i];

  h.sform_code = xform_code;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) h.srow[r][c] = affine.m[r][c];

  // qform: rotation R with M = R * diag(zooms) * diag(1,1,qfac). Stored only when M really has that form.
  double rot[3][3];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) rot[r][c] = affine.m[r][c] / (zooms[c] == 0 ? 1.0 : zooms[c]);
  double det = rot[0][0] * (rot[1][1] * rot[2][2] - rot[1][2] * rot[2][1]) - rot[0][1] * (rot[1][0] * rot[2][2] - rot[1][2] * rot[2][0]) +
               rot[0][2] * (rot[1][0] * rot[2][1] - rot[1][1] * rot[2][0]);
  double qfac = det < 0 ? -1.0 : 1.0;
  if (qfac < 0)
    for (int r = 0; r < 3; ++r) rot[r][2] = -rot[r][2];
  double orth_err = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double dot = 0;
      for (int k = 0; k < 3; ++k) dot += rot[k][i] * rot[k][j];
      orth_err = std::max(orth_err, std::abs(dot - (i == j ? 1.0 : 0.0)));
    }
  if (orth_err < 1e-6) {
    // Quaternion from a rotation matrix (Shepperd), normalised to w >= 0 as NIfTI requires.
    double w, x, y, z;
    double tr = rot[0][0] + rot[1][1] + rot[2][2];
    if (tr > 0) {
      double s = 0.5 / std::sqrt(tr + 1.0);
      w = 0.25 / s;
      x = (rot[2][1] - rot[1][2]) * s;
      y = (rot[0][2] - rot[2][0]) * s;
      z = (rot[1][0] - rot[0][1]) * s;
    } else if (rot[0][0] > rot[1][1] && rot[0][0] > rot[2][2]) {
      double s = 2.0 * std::sqrt(1.0 + rot[0][0] - rot[1][1] - rot[2][2]);
      w = (rot[2][1] - rot[1][2]) / s;
      x = 0.25 * s;
      y = (rot[0][1] + rot[1][0]) / s;
      z = (rot[0][2] + rot[2][0]) / s;
    } else if (rot[1][1] > rot[2][2]) {
      double s = 2.0 * std::sqrt(1.0 + rot[1][1] - rot[0][0] - rot[2][2]);
      w = (rot[0][2] - rot[2][0]) / s;
      x = (rot[0][1] + rot[1][0]) / s;
      y = 0.25 * s;
      z = (rot[1][2] + rot[2][1]) / s;
    } else {
      double s = 2.0 * std::sqrt(1.0 + rot[2][2] - rot[0][0] - rot[1][1]);
      w = (rot[1][0] - rot[0][1]) / s;
      x = (rot[0][2] + rot[2][0]) / s;
      y = (rot[1][2] + rot[2][1]) / s;
      z = 0.25 * s;
    }
    if (w < 0) {
      x = -x;
      y = -y;
      z = -z;
    }
    h.qform_code = xform_code;
    h.quatern_b = x;
    h.quatern_c = y;
    h.quatern_d = z;
    h.pixdim[0] = qfac;
    h.qoffset_x = affine.m[0][3];
    h.qoffset_y = affine.m[1][3];
    h.qoffset_z = affine.m[2][3];
  }
  return h;
}

NiftiHeader label_header_like(const NiftiHeader& like, const std::array<std::int64_t, 3>& size, const std::string& descrip) {
  NiftiHeader h = like;
  h.dim.fill(1);
  h.dim[0] = 3;
  for (int i = 0; i < 3; ++i) h.dim[static_cast<std::size_t>(i + 1)] = size[static_cast<std::size_t>(i)];
  h.datatype = DType::kUint8;
  h.scl_slope = 1;
  h.scl_inter = 0;
  h.cal_min = 0;
  h.cal_max = 0;
  h.intent_code = 0;
  h.pair = false;
  h.big_endian = false;
  h.descrip = descrip;
  return h;
}

}  // namespace segscale::io
