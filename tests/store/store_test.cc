#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "../support/temp_dir.h"
#include "io/file.h"
#include "io/npy.h"
#include "io/tar.h"
#include "store/shard_writer.h"
#include "store/store.h"
#include "util/crc32c.h"
#include "util/error.h"
#include "util/half.h"

namespace segscale::store {
namespace {

namespace fs = std::filesystem;
using segscale::testing::expect_error_containing;
using segscale::testing::TempDir;

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xe3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c("", 0), 0u);
  std::vector<std::uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8a9136aau);  // RFC 3720 B.4
  // Incremental equals one-shot.
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345", 5)), 0xe3069283u);
}

// Bit by bit, as the definition: the reference for the three-stream hardware path.
std::uint32_t crc32c_bitwise(const std::uint8_t* p, std::size_t n, std::uint32_t crc = 0) {
  std::uint32_t c = ~crc;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
  }
  return ~c;
}

TEST(Crc32c, LongBuffersAcrossStreamBlocksEqualTheDefinition) {
  std::mt19937 gen(3);
  std::vector<std::uint8_t> buf(3 * 3 * 8192 + 77);
  for (auto& b : buf) b = static_cast<std::uint8_t>(gen());
  for (std::size_t n : {std::size_t{24575}, std::size_t{24576}, std::size_t{24577}, std::size_t{49152 + 13}, buf.size()})
    for (std::size_t offset : {0, 3}) {  // unaligned starts too
      const std::size_t len = std::min(n, buf.size() - offset);
      EXPECT_EQ(crc32c(buf.data() + offset, len), crc32c_bitwise(buf.data() + offset, len)) << n << " at " << offset;
      EXPECT_EQ(crc32c(buf.data() + offset + 5, len - 5, crc32c(buf.data() + offset, 5)), crc32c_bitwise(buf.data() + offset, len));
    }
}

TEST(Half, RoundTripsAndRoundsToNearestEven) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f, 0.333251953125f}) EXPECT_EQ(half_to_float(float_to_half(f)), f) << f;
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048), 0x3c00);  // halfway between 1 and 1+2^-10: to even
  EXPECT_EQ(float_to_half(1.0f + 3.0f / 2048), 0x3c02);
  EXPECT_EQ(float_to_half(70000.0f), 0x7c00);            // overflow to inf
  EXPECT_EQ(float_to_half(-1e-9f), 0x8000);              // underflow to -0
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
}

TEST(Tar, HeaderRoundTripsAndRejectsCorruption) {
  auto h = io::tar_header("BRATS_001_0000.image.npy", 12345);
  io::TarMember m;
  ASSERT_TRUE(io::parse_tar_header(h, "x", m));
  EXPECT_EQ(m.name, "BRATS_001_0000.image.npy");
  EXPECT_EQ(m.size, 12345u);
  h[130] ^= 1;
  expect_error_containing([&] { io::parse_tar_header(h, "s.tar", m); }, {"s.tar", "checksum"});
  std::vector<std::uint8_t> zero(512, 0);
  EXPECT_FALSE(io::parse_tar_header(zero, "x", m));
  expect_error_containing([] { io::tar_header(std::string(101, 'a'), 1); }, {"1..100 bytes"});
}

void write_settings(const fs::path& dir, std::vector<std::string> cases, int per_shard) {
  write_or_check_settings(dir, {{"cases", cases}, {"cases_per_shard", per_shard}, {"mode", "copies"}});
}

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

void add_sample(ShardWriter& w, const std::string& key, int copy) {
  auto js = bytes_of("{\"k\":\"" + key + "\"}");
  auto raw = bytes_of("image-bytes-" + key);
  auto img = io::encode_npy("|u1", {static_cast<std::int64_t>(raw.size())}, raw);
  auto lab = io::encode_npy("|u1", {1}, bytes_of("L"));
  w.add(key, key.substr(0, 4), copy, {{"json", js}, {"image.npy", img}, {"label.npy", lab}});
}

// A finalised store of one case (AAAA) with one sample (AAAA_0000) in shard 0.
void one_sample_store(const fs::path& dir) {
  write_settings(dir, {"AAAA"}, 1);
  ShardWriter w(dir, 0);
  add_sample(w, "AAAA_0000", 0);
  w.commit();
  finalize_store(dir);
}

TEST(Store, FinaliseReadAndRollback) {
  TempDir dir;
  write_settings(dir.path(), {"AAAA", "BBBB", "CCCC"}, 2);
  expect_error_containing([&] { finalize_store(dir.path()); }, {"2 of 2 shards not written", "shard-000000.tar"});
  {
    ShardWriter w(dir.path(), 0);
    add_sample(w, "AAAA_0000", 0);
    auto mark = w.mark();
    add_sample(w, "BBBB_0000", 0);
    w.rollback(mark);  // BBBB failed half-way
    w.skip("BBBB", "corrupt file");
    w.commit();
  }
  {
    ShardWriter abandoned(dir.path(), 1);  // destroyed without commit: leaves nothing
    add_sample(abandoned, "CCCC_0000", 0);
  }
  EXPECT_FALSE(shard_complete(dir.path(), 1));
  ShardWriter w(dir.path(), 1);
  add_sample(w, "CCCC_0000", 0);
  w.commit();
  auto m = finalize_store(dir.path());
  EXPECT_EQ(m["counts"]["samples"], 2);
  EXPECT_EQ(m["skipped"][0]["case"], "BBBB");
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos);
  StoreReader r(dir.path());
  ASSERT_EQ(r.samples().size(), 2u);
  auto raw = r.read(1);
  auto h = io::parse_npy_header(raw.image, "x");
  EXPECT_EQ(std::string(raw.image.begin() + static_cast<std::ptrdiff_t>(h.data_offset), raw.image.end()), "image-bytes-CCCC_0000");
  EXPECT_TRUE(verify_store(dir.path()).empty());
  // The JSON member alone (what the nnU-Net loader reads of every case at its start) is the whole read's.
  const io::Bytes json = r.read_json_member(1);
  EXPECT_EQ(std::string(json.begin(), json.end()), std::string(raw.json.begin(), raw.json.end()));
  // A flipped byte in it is named as corrupt.
  const auto& ref = r.samples()[1];
  const fs::path shard = dir.path() / shard_file(ref.shard);
  io::Bytes bytes = io::read_file(shard);
  bytes[ref.json.offset] ^= 0x20;
  io::write_file_atomic(shard, bytes);
  const StoreReader again(dir.path());  // a new file: the first reader holds the old one open
  expect_error_containing([&] { again.read_json_member(1); }, {"member CCCC_0000.json: CRC-32C mismatch", "corrupt sample"});
}

// The last shares of a Slurm array can finish together and both finalise: the first one's clean-up of leftovers
// must not delete the other's index or manifest temporary (CI saw "manifest.json: cannot rename temporary into
// place: No such file or directory"), while a killed shard writer's temporary is still removed.
TEST(Store, FinalisersSideBySideKeepEachOthersTemporaries) {
  TempDir dir;
  write_settings(dir.path(), {"AAAA", "BBBB"}, 1);  // two shards of one case
  for (std::uint32_t sh : {0u, 1u}) {
    ShardWriter w(dir.path(), sh);
    add_sample(w, sh ? "BBBB_0000" : "AAAA_0000", 0);
    w.commit();
  }
  const fs::path other = dir / io::temp_name("manifest.json");    // the other finaliser, mid-write
  const fs::path killed = dir / io::temp_name("shard-000001.tar");  // a writer killed long ago
  io::write_file_atomic(other, std::string("{}"));
  io::write_file_atomic(killed, std::string("half a shard"));
  ASSERT_NE(other.filename().string().find(".tmp."), std::string::npos);
  finalize_store(dir.path());
  EXPECT_TRUE(fs::exists(other));
  EXPECT_FALSE(fs::exists(killed));
  fs::remove(other);
  // And for real: finalisers in threads, each must succeed with the same manifest.
  std::vector<std::thread> threads;
  std::vector<std::string> got(4), errors(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      try {
        for (int k = 0; k < 20; ++k) got[t] = finalize_store(dir.path()).dump();
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(errors[t], "") << "finaliser " << t;
    EXPECT_EQ(got[t], got[0]);
  }
  EXPECT_EQ(StoreReader(dir.path()).samples().size(), 2u);
}

TEST(Store, FlippedByteIsFoundByReaderAndVerify) {
  TempDir dir;
  one_sample_store(dir.path());
  StoreReader clean(dir.path());
  const auto off = clean.samples()[0].image.offset;
  auto bytes = io::read_file(dir / "shard-000000.tar");
  bytes[off + clean.samples()[0].image.size - 2] ^= 0x40;  // in the data, past the npy header
  io::write_file_atomic(dir / "shard-000000.tar", bytes);
  StoreReader r(dir.path());
  expect_error_containing([&] { r.read(0); }, {"shard-000000.tar", "AAAA_0000.image.npy", "CRC-32C mismatch"});
  auto problems = verify_store(dir.path());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("member AAAA_0000.image.npy: CRC-32C mismatch"), std::string::npos) << problems[0];
}

TEST(Store, TruncatedShardIsFound) {
  TempDir dir;
  one_sample_store(dir.path());
  fs::resize_file(dir / "shard-000000.tar", 1100);
  StoreReader r(dir.path());
  expect_error_containing([&] { r.read(0); }, {"shard-000000.tar", "short read"});
  auto problems = verify_store(dir.path());
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("truncated"), std::string::npos) << problems[0];
}

TEST(Store, SettingsMismatchIsRefusedOnceAShardIsCommitted) {
  TempDir dir;
  write_settings(dir.path(), {"AAAA"}, 1);
  write_settings(dir.path(), {"AAAA"}, 2);  // nothing made with the old settings yet: replaced
  EXPECT_EQ(read_settings(dir.path()).cases_per_shard, 2u);
  {
    ShardWriter w(dir.path(), 0);
    add_sample(w, "AAAA_0000", 0);
    w.commit();
  }
  write_settings(dir.path(), {"AAAA"}, 2);  // the same settings: fine
  expect_error_containing([&] { write_settings(dir.path(), {"AAAA"}, 1); },
                          {"settings.json", "other settings: cases_per_shard is 2 in the store but 1 in this run"});
  expect_error_containing([&] { StoreReader r(dir / "nothing"); }, {"nothing: no such folder"});
}

TEST(Store, ShardProblemsFindWhatVerifyFinds) {
  TempDir dir;
  write_settings(dir.path(), {"AAAA", "BBBB"}, 1);
  for (std::uint32_t i = 0; i < 2; ++i) {
    ShardWriter w(dir.path(), i);
    add_sample(w, i ? "BBBB_0000" : "AAAA_0000", 0);
    w.commit();
  }
  EXPECT_TRUE(shard_problems(dir.path(), 0).empty());
  EXPECT_TRUE(shard_problems(dir.path(), 1).empty());
  auto bytes = io::read_file(dir / "shard-000000.tar");
  bytes[512 + 3] ^= 0x01;  // inside the first member's data
  io::write_file_atomic(dir / "shard-000000.tar", bytes);
  auto p = shard_problems(dir.path(), 0);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("CRC-32C mismatch"), std::string::npos) << p[0];
  fs::resize_file(dir / "shard-000001.tar", 1024);
  p = shard_problems(dir.path(), 1);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("bytes but its sidecar says"), std::string::npos) << p[0];
  fs::remove(dir / "shard-000001.tar");
  EXPECT_FALSE(shard_problems(dir.path(), 1).empty());
  io::write_file_atomic(dir / "shard-000001.idx.json", std::string("{}"));
  p = shard_problems(dir.path(), 1);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("malformed sidecar"), std::string::npos) << p[0];
}

}  // namespace
}  // namespace segscale::store
