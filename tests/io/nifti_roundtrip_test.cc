#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "../support/temp_dir.h"
#include "io/nifti_image.h"
#include "nifti_test_util.h"

namespace segscale::io {
namespace {

using segscale::testing::nifti_bytes;
using segscale::testing::put_at;
using segscale::testing::TempDir;
using segscale::testing::write_bytes;

template <typename T>
std::vector<std::uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<std::uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Values that exercise the type's range, converted to what nibabel + float32 would give.
template <typename T>
std::vector<T> sample_values(std::size_t n) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    double x = std::sin(static_cast<double>(i) * 0.7) * 0.9;
    if constexpr (std::is_floating_point_v<T>) v[i] = static_cast<T>(x * 1e3);
    else if constexpr (std::is_signed_v<T>) v[i] = static_cast<T>(x * static_cast<double>(std::numeric_limits<T>::max()));
    else v[i] = static_cast<T>((x + 1) / 2 * static_cast<double>(std::numeric_limits<T>::max()));
  }
  return v;
}

struct Combo {
  int version;
  bool big_endian;
  const char* ext;
};

template <typename T>
void roundtrip_type(DType dt, const TempDir& dir) {
  for (Combo c : {Combo{1, false, ".nii"}, Combo{1, true, ".nii.gz"}, Combo{2, false, ".nii.gz"}, Combo{2, true, ".nii"}}) {
    SCOPED_TRACE(std::string(dtype_name(dt)) + " v" + std::to_string(c.version) + (c.big_endian ? " BE " : " LE ") + c.ext);
    Affine a = Affine::diagonal(-1.5, 1.5, 2.0);
    a(0, 3) = 120;
    a(1, 3) = -100;
    a(2, 3) = -60;
    auto h = make_nifti_header({5, 4, 3, 2}, dt, a);
    h.version = c.version;
    h.big_endian = c.big_endian;
    auto values = sample_values<T>(5 * 4 * 3 * 2);
    auto path = dir / (std::string("rt_") + dtype_name(dt) + std::to_string(c.version) + (c.big_endian ? "be" : "le") + c.ext);
    write_nifti(path, h, as_bytes(values));
    NiftiImage img = read_nifti(path);
    EXPECT_EQ(img.header.version, c.version);
    EXPECT_EQ(img.header.big_endian, c.big_endian);
    EXPECT_EQ(img.header.datatype, dt);
    EXPECT_EQ(img.header.shape(), (std::vector<std::int64_t>{5, 4, 3, 2}));
    EXPECT_LT(max_abs_diff(img.affine(), a), 1e-5);
    EXPECT_LT(max_abs_diff(img.header.qform_affine(), a), 1e-5);
    ASSERT_EQ(img.data().size(), values.size() * sizeof(T));
    EXPECT_EQ(std::memcmp(img.data().data(), values.data(), img.data().size()), 0);
    auto f = to_float32(img);
    for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(f[i], static_cast<float>(values[i])) << i;
  }
}

TEST(NiftiRoundTrip, EveryDatatypeVersionByteOrderAndCompression) {
  TempDir dir;
  roundtrip_type<std::uint8_t>(DType::kUint8, dir);
  roundtrip_type<std::int8_t>(DType::kInt8, dir);
  roundtrip_type<std::int16_t>(DType::kInt16, dir);
  roundtrip_type<std::uint16_t>(DType::kUint16, dir);
  roundtrip_type<std::int32_t>(DType::kInt32, dir);
  roundtrip_type<std::uint32_t>(DType::kUint32, dir);
  roundtrip_type<std::int64_t>(DType::kInt64, dir);
  roundtrip_type<std::uint64_t>(DType::kUint64, dir);
  roundtrip_type<float>(DType::kFloat32, dir);
  roundtrip_type<double>(DType::kFloat64, dir);
}

TEST(NiftiRoundTrip, ScalingIsAppliedInDoubleThenRoundedOnce) {
  TempDir dir;
  auto h = make_nifti_header({3, 1, 1}, DType::kInt16, Affine::identity());
  h.scl_slope = 0.1f;  // stored as float32 in NIfTI-1: the double we apply is float(0.1)
  h.scl_inter = -3.0;
  std::vector<std::int16_t> raw = {0, 7, -32768};
  write_nifti(dir / "s.nii", h, as_bytes(raw));
  auto f = to_float32(read_nifti(dir / "s.nii"));
  const double slope = static_cast<double>(0.1f);
  EXPECT_EQ(f[0], static_cast<float>(0 * slope - 3.0));
  EXPECT_EQ(f[1], static_cast<float>(7 * slope - 3.0));
  EXPECT_EQ(f[2], static_cast<float>(-32768 * slope - 3.0));
}

TEST(NiftiRoundTrip, ZeroOrNanSlopeMeansNoScaling) {
  TempDir dir;
  for (double slope : {0.0, std::nan("")}) {
    auto h = make_nifti_header({2, 1, 1}, DType::kInt16, Affine::identity());
    h.scl_slope = slope;
    h.scl_inter = 50;
    std::vector<std::int16_t> raw = {3, -4};
    write_nifti(dir / "n.nii", h, as_bytes(raw));
    auto f = to_float32(read_nifti(dir / "n.nii"));
    EXPECT_EQ(f[0], 3.0f);
    EXPECT_EQ(f[1], -4.0f);
  }
}

TEST(NiftiReader, HonoursAVoxOffsetFarPastTheHeader) {
  TempDir dir;
  auto h = make_nifti_header({2, 2, 1}, DType::kFloat32, Affine::identity());
  auto bytes = serialize_nifti_header(h);
  put_at<float>(bytes, 108, 8192.0f);  // vox_offset
  bytes.resize(8192, 0xEE);            // junk an extension-unaware reader would take as data
  std::vector<float> v = {1.5f, -2.5f, 3.5f, 4.5f};
  const auto* p = reinterpret_cast<const std::uint8_t*>(v.data());
  bytes.insert(bytes.end(), p, p + 16);
  write_bytes(dir / "far.nii", bytes);
  write_bytes(dir / "far.nii.gz", gzip_compress(bytes));
  for (const char* name : {"far.nii", "far.nii.gz"}) {
    auto img = read_nifti(dir / name);
    EXPECT_EQ(img.header.vox_offset, 8192);
    EXPECT_EQ(to_float32(img), v) << name;
  }
}

TEST(NiftiReader, ReadsHdrImgPairs) {
  TempDir dir;
  auto h = make_nifti_header({2, 3, 1}, DType::kInt16, Affine::diagonal(2, 2, 2));
  auto bytes = serialize_nifti_header(h);
  std::memcpy(bytes.data() + 344, "ni1\0", 4);
  put_at<float>(bytes, 108, 0.0f);
  bytes.resize(348);
  write_bytes(dir / "pair.hdr", bytes);
  std::vector<std::int16_t> v = {1, 2, 3, 4, 5, 6};
  write_bytes(dir / "pair.img", as_bytes(v));
  for (const char* name : {"pair.hdr", "pair.img"}) {
    auto img = read_nifti(dir / name);
    EXPECT_TRUE(img.header.pair);
    EXPECT_EQ(to_float32(img), (std::vector<float>{1, 2, 3, 4, 5, 6})) << name;
  }
}

TEST(NiftiHeader, AffineChoiceFollowsNibabel) {
  Affine s = Affine::diagonal(2, 2, 2);
  s(0, 3) = 5;
  Affine q = Affine::diagonal(-1, -1, 1);
  auto hq = make_nifti_header({4, 4, 4}, DType::kUint8, q);  // qform and sform = q
  auto h = hq;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) h.srow[r][c] = s.m[r][c];
  EXPECT_LT(max_abs_diff(h.best_affine(), s), 1e-12);  // sform wins when both are set
  EXPECT_STREQ(h.affine_source(), "sform");
  h.sform_code = 0;
  EXPECT_LT(max_abs_diff(h.best_affine(), q), 1e-6);  // then qform
  EXPECT_STREQ(h.affine_source(), "qform");
  h.qform_code = 0;  // a qform with code 0 is ignored even though its fields hold a valid LPS rotation
  Affine base = h.best_affine();
  EXPECT_STREQ(h.affine_source(), "pixdim");
  EXPECT_DOUBLE_EQ(base(0, 0), -1.0);  // nibabel's base affine: x flipped, centred
  EXPECT_DOUBLE_EQ(base(1, 1), 1.0);
  EXPECT_DOUBLE_EQ(base(0, 3), 1.5);
  EXPECT_DOUBLE_EQ(base(1, 3), -1.5);
}

TEST(NiftiHeader, QformOfARotatedLpsGridRoundTrips) {
  const double t = 0.3;
  Affine a;
  a.m = {{{-std::cos(t) * 1.2, -std::sin(t) * 0.9, 0, 10}, {-std::sin(t) * 1.2, std::cos(t) * 0.9, 0, 20}, {0, 0, 3.0, -5}, {0, 0, 0, 1}}};
  auto h = make_nifti_header({4, 4, 4}, DType::kFloat32, a);
  EXPECT_NE(h.qform_code, 0);
  // A 180-degree rotation has w = 0, which the quaternion recovers as sqrt(1 - b2 - c2 - d2): ~1e-8 off.
  EXPECT_LT(max_abs_diff(h.qform_affine(), a), 1e-6);
}

}  // namespace
}  // namespace segscale::io
