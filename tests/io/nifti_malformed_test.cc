// Every malformed input gets an error naming the file and the problem; none may crash or read out of
// bounds (this suite also runs under AddressSanitizer and UBSan in CI).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "../support/temp_dir.h"
#include "io/nifti_image.h"
#include "nifti_test_util.h"
#include "util/error.h"

namespace segscale::io {
namespace {

using segscale::testing::expect_error_containing;
using segscale::testing::nifti_bytes;
using segscale::testing::put_at;
using segscale::testing::TempDir;
using segscale::testing::write_bytes;

class Malformed : public ::testing::Test {
 protected:
  // A valid 4x4x4 uint8 NIfTI-1 file image.
  std::vector<std::uint8_t> valid_v1() {
    auto h = make_nifti_header({4, 4, 4}, DType::kUint8, Affine::identity());
    return nifti_bytes(h, std::vector<std::uint8_t>(64, 7));
  }
  std::vector<std::uint8_t> valid_v2() {
    auto h = make_nifti_header({4, 4, 4}, DType::kUint8, Affine::identity());
    h.version = 2;
    return nifti_bytes(h, std::vector<std::uint8_t>(64, 7));
  }
  // Writes `bytes` as NAME and expects read_nifti to fail with the path and every needle in the message.
  template <typename Bytes = std::vector<std::uint8_t>>
  void expect_read_error(const std::string& name, const Bytes& bytes, std::initializer_list<std::string> needles) {
    auto p = dir_ / name;
    write_bytes(p, bytes);
    std::vector<std::string> all(needles);
    all.push_back(p.string());
    try {
      read_nifti(p);
      ADD_FAILURE() << name << ": no error";
    } catch (const std::exception& e) {
      std::string msg = e.what();
      for (const auto& n : all) EXPECT_NE(msg.find(n), std::string::npos) << name << ": " << msg << "\nmissing: " << n;
    }
  }
  TempDir dir_;
};

TEST_F(Malformed, MissingFile) {
  expect_error_containing([&] { read_nifti(dir_ / "nope.nii.gz"); }, {"nope.nii.gz", "cannot open"});
}

TEST_F(Malformed, ZeroByteFile) { expect_read_error("empty.nii", {}, {"empty file"}); }

TEST_F(Malformed, ZeroByteGzFile) { expect_read_error("empty.nii.gz", {}, {"empty file"}); }

TEST_F(Malformed, TooShort) { expect_read_error("short.nii", {1, 2, 3}, {"too short"}); }

TEST_F(Malformed, HtmlSavedAsNiiGz) {
  std::string html = "<!DOCTYPE html><html><body>Access denied</body></html>\n";
  expect_read_error("page.nii.gz", std::vector<std::uint8_t>(html.begin(), html.end()), {"not a NIfTI file", "HTML"});
}

TEST_F(Malformed, WrongSizeofHdr) {
  auto b = valid_v1();
  put_at<std::int32_t>(b, 0, 1234);
  expect_read_error("size.nii", b, {"sizeof_hdr is 1234"});
}

TEST_F(Malformed, WrongMagic) {
  auto b = valid_v1();
  std::memcpy(b.data() + 344, "xyz\0", 4);
  expect_read_error("magic.nii", b, {"magic"});
  auto b2 = valid_v2();
  std::memcpy(b2.data() + 4, "n+2\0\0\0\0\0", 8);
  expect_read_error("magic2.nii", b2, {"NIfTI-2 magic"});
}

TEST_F(Malformed, TruncatedHeader) {
  auto b = valid_v1();
  b.resize(200);
  expect_read_error("trunchdr.nii", b, {"truncated NIfTI-1 header", "200 of 348"});
  auto g = gzip_compress(b);
  expect_read_error("trunchdr.nii.gz", g, {"truncated NIfTI-1 header"});
}

TEST_F(Malformed, TruncatedData) {
  auto b = valid_v1();
  b.resize(b.size() - 10);
  expect_read_error("truncdata.nii", b, {"truncated", "header needs 416"});
  expect_read_error("truncdata.nii.gz", gzip_compress(b), {"truncated"});
}

TEST_F(Malformed, TruncatedGzipStream) {
  auto g = gzip_compress(valid_v1());
  g.resize(g.size() - 12);
  expect_read_error("cutgz.nii.gz", g, {"truncated"});
}

TEST_F(Malformed, CorruptGzipStream) {
  std::vector<std::uint8_t> big(1 << 16);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7 + (i >> 5));
  auto h = make_nifti_header({64, 32, 32}, DType::kUint8, Affine::identity());
  auto g = gzip_compress(nifti_bytes(h, big));
  for (std::size_t i = g.size() / 2; i < g.size() / 2 + 16; ++i) g[i] ^= 0xA5;
  expect_read_error("corrupt.nii.gz", g, {"gzip"});
}

TEST_F(Malformed, Dim0OutOfRange) {
  auto b = valid_v1();
  put_at<std::int16_t>(b, 40, 0);
  expect_read_error("dim0.nii", b, {"dim[0] = 0"});
  put_at<std::int16_t>(b, 40, 9);
  expect_read_error("dim9.nii", b, {"dim[0] = 9"});
}

TEST_F(Malformed, NegativeExtent) {
  auto b = valid_v1();
  put_at<std::int16_t>(b, 44, -4);
  expect_read_error("negdim.nii", b, {"dim[2] = -4"});
}

TEST_F(Malformed, DimsOverflowing64Bits) {
  auto b = valid_v2();
  put_at<std::int64_t>(b, 16, 4);
  for (int i = 1; i <= 4; ++i) put_at<std::int64_t>(b, 16 + 8 * i, std::int64_t{1} << 40);
  expect_read_error("overflow.nii", b, {"64 bits"});
}

TEST_F(Malformed, HeaderClaimingTerabytesInASmallFile) {
  auto b = valid_v2();
  for (int i = 1; i <= 3; ++i) put_at<std::int64_t>(b, 16 + 8 * i, std::int64_t{1} << 14);  // 4 TiB of uint8
  expect_read_error("huge.nii", b, {"truncated", "4398046511104"});
  expect_read_error("huge.nii.gz", gzip_compress(b), {"gzip bomb"});
}

TEST_F(Malformed, NegativeVoxOffset) {
  auto b = valid_v1();
  put_at<float>(b, 108, -400.0f);
  expect_read_error("negoff.nii", b, {"negative vox_offset"});
  auto b2 = valid_v2();
  put_at<std::int64_t>(b2, 168, -1);
  expect_read_error("negoff2.nii", b2, {"negative vox_offset"});
}

TEST_F(Malformed, NonFiniteVoxOffset) {
  auto b = valid_v1();
  put_at<float>(b, 108, std::nanf(""));
  expect_read_error("nanoff.nii", b, {"vox_offset"});
}

TEST_F(Malformed, HugeVoxOffset) {
  auto b = valid_v2();
  put_at<std::int64_t>(b, 168, std::int64_t{1} << 62);
  expect_read_error("hugeoff.nii", b, {"truncated"});
}

TEST_F(Malformed, UnsupportedDatatype) {
  auto b = valid_v1();
  put_at<std::int16_t>(b, 70, 128);  // RGB24
  expect_read_error("rgb.nii", b, {"datatype code 128"});
}

TEST_F(Malformed, InvalidQuaternionWhenQformIsUsed) {
  auto b = valid_v1();
  put_at<std::int16_t>(b, 254, 0);  // no sform
  put_at<std::int16_t>(b, 252, 1);
  put_at<float>(b, 256, 0.9f);
  put_at<float>(b, 260, 0.9f);
  expect_read_error("quat.nii", b, {"quaternion"});
}

TEST_F(Malformed, NonFiniteSform) {
  auto b = valid_v1();
  put_at<float>(b, 280, std::numeric_limits<float>::infinity());
  expect_read_error("infsform.nii", b, {"sform affine has non-finite values"});
}

TEST_F(Malformed, ValidSlopeWithInfiniteIntercept) {
  auto b = valid_v1();
  put_at<float>(b, 112, 2.0f);
  put_at<float>(b, 116, std::numeric_limits<float>::infinity());
  expect_read_error("inter.nii", b, {"scl_inter"});
}

TEST_F(Malformed, PairWithoutImage) {
  auto b = valid_v1();
  std::memcpy(b.data() + 344, "ni1\0", 4);
  b.resize(348);
  expect_read_error("lonely.hdr", b, {"lonely.img", "does not exist"});
  expect_error_containing([&] { read_nifti(dir_ / "orphan.img"); }, {"orphan.img", "without its .hdr"});
}

TEST_F(Malformed, RandomGarbageNeverCrashes) {
  // A crude fuzz pass: flip bytes of a valid header; every outcome must be a value or an Error.
  auto base = valid_v1();
  std::uint32_t s = 12345;
  for (int trial = 0; trial < 300; ++trial) {
    auto b = base;
    for (int k = 0; k < 4; ++k) {
      s = s * 1664525u + 1013904223u;
      b[(s >> 8) % 352] = static_cast<std::uint8_t>(s >> 24);
    }
    auto p = dir_ / "fuzz.nii";
    write_bytes(p, b);
    try {
      auto img = read_nifti(p);
      (void)to_float32(img);
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace segscale::io
