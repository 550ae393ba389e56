#include "io/gzip.h"

#include <gtest/gtest.h>

#include <numeric>

#include "../support/temp_dir.h"

namespace segscale::io {
namespace {

using segscale::testing::expect_error_containing;

Bytes pattern(std::size_t n) {
  Bytes v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 2654435761u) >> 13);
  return v;
}

TEST(Gzip, RoundTripsThroughLibdeflateAndZlib) {
  auto data = pattern(1 << 20);
  auto gz = gzip_compress(data);
  ASSERT_TRUE(looks_like_gzip(gz));
  EXPECT_EQ(gunzip_exact(gz, data.size(), "x"), data);
  EXPECT_EQ(gunzip_zlib(gz, "x"), data);
  EXPECT_EQ(gunzip_prefix(gz, 100, "x"), std::vector<std::uint8_t>(data.begin(), data.begin() + 100));
}

TEST(Gzip, ReadsMultiMemberStreams) {
  auto a = pattern(5000), b = pattern(7000);
  auto ga = gzip_compress(a), gb = gzip_compress(b);
  Bytes both = ga;
  both.insert(both.end(), gb.begin(), gb.end());
  Bytes want = a;
  want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(gunzip_exact(both, want.size(), "x"), want);  // ISIZE names only the last member: streaming path
  EXPECT_EQ(gunzip_zlib(both, "x"), want);
}

TEST(Gzip, StopsAtTheExpectedSizeOfABomb) {
  Bytes zeros(50 << 20, 0);  // 50 MiB of zeros compress to ~50 KiB
  auto gz = gzip_compress(zeros, 6);
  ASSERT_LT(gz.size(), 200u << 10);
  auto out = gunzip_exact(gz, 1000, "bomb.nii.gz");
  EXPECT_EQ(out.size(), 1000u);
}

TEST(Gzip, TruncatedStreamIsNamed) {
  auto gz = gzip_compress(pattern(100000));
  gz.resize(gz.size() / 2);
  expect_error_containing([&] { gunzip_exact(gz, 100000, "cut.nii.gz"); }, {"cut.nii.gz", "truncated"});
  expect_error_containing([&] { gunzip_zlib(gz, "cut.nii.gz"); }, {"cut.nii.gz", "truncated"});
}

TEST(Gzip, CorruptStreamIsNamed) {
  auto gz = gzip_compress(pattern(100000));
  for (std::size_t i = 20; i < 60; ++i) gz[i] ^= 0x5a;
  expect_error_containing([&] { gunzip_exact(gz, 100000, "bad.nii.gz"); }, {"bad.nii.gz"});
}

TEST(Gzip, ShortStreamThatEndsEarlyIsTruncated) {
  auto gz = gzip_compress(pattern(1000));
  expect_error_containing([&] { gunzip_exact(gz, 5000, "short.nii.gz"); }, {"short.nii.gz", "truncated", "1000", "5000"});
}

TEST(Gzip, MaxInflatedSizeBoundsDeflate) {
  Bytes zeros(10 << 20, 0);
  auto gz = gzip_compress(zeros, 12);
  EXPECT_GE(max_inflated_size(gz.size()), zeros.size());
}

}  // namespace
}  // namespace segscale::io
