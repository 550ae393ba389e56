#include "io/npy.h"

#include <gtest/gtest.h>

#include <cstring>

#include "../support/temp_dir.h"
#include "io/file.h"

namespace segscale::io {
namespace {

using segscale::testing::expect_error_containing;

TEST(Npy, EncodesAHeaderNumpyAccepts) {
  std::vector<float> v = {1, 2, 3, 4, 5, 6};
  auto b = encode_npy("<f4", {2, 3}, {reinterpret_cast<const std::uint8_t*>(v.data()), 24});
  EXPECT_EQ(std::memcmp(b.data(), "\x93NUMPY\x01\x00", 8), 0);
  std::size_t hlen = b[8] | (b[9] << 8);
  EXPECT_EQ((10 + hlen) % 64, 0u);
  std::string dict(reinterpret_cast<const char*>(b.data() + 10), hlen);
  EXPECT_NE(dict.find("'shape': (2, 3)"), std::string::npos) << dict;
  auto h = parse_npy_header(b, "x.npy");
  EXPECT_EQ(h.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(h.descr, "<f4");
  EXPECT_FALSE(h.fortran_order);
  EXPECT_EQ(std::memcmp(b.data() + h.data_offset, v.data(), 24), 0);
}

TEST(Npy, OneDimensionalShapeHasTrailingComma) {
  std::vector<std::uint8_t> v = {1, 2, 3};
  auto b = encode_npy("|u1", {3}, v);
  std::string dict(reinterpret_cast<const char*>(b.data() + 10), b[8]);
  EXPECT_NE(dict.find("'shape': (3,)"), std::string::npos) << dict;
  EXPECT_EQ(parse_npy_header(b, "x").shape, std::vector<std::int64_t>{3});
}

TEST(Npy, RejectsMalformedHeaders) {
  std::vector<std::uint8_t> v(24);
  auto b = encode_npy("<f4", {2, 3}, v);
  auto truncated = b;
  truncated.resize(truncated.size() - 4);
  expect_error_containing([&] { parse_npy_header(truncated, "t.npy"); }, {"t.npy", "truncated"});
  expect_error_containing([&] { parse_npy_header(std::vector<std::uint8_t>{1, 2, 3}, "m.npy"); }, {"m.npy", "magic"});
  auto bad = b;
  std::memcpy(bad.data() + 10 + 11, "<c8", 3);  // 'descr': '<c8' (complex)
  expect_error_containing([&] { parse_npy_header(bad, "d.npy"); }, {"d.npy", "unsupported npy dtype"});
  expect_error_containing([&] { encode_npy("<f4", {2, 2}, v); }, {"24 data bytes"});
}

}  // namespace
}  // namespace segscale::io
