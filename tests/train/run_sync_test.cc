// RunSync and Staging against a "remote" that is a local folder (the same Storage seam as S3; the S3 round trip
// is in tests/cli/test_s3.py): only changed run files are pushed, pull drops stale local copies, clear empties.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "../support/temp_dir.h"
#include "io/file.h"
#include "storage/staging.h"
#include "train/run_sync.h"

namespace segscale::train {
namespace {

namespace fs = std::filesystem;
using segscale::testing::TempDir;

std::string text(const fs::path& p) {
  const io::Bytes b = io::read_file(p);
  return std::string(b.begin(), b.end());
}

TEST(RunSync, PushesChangedRunFilesOnlyAndPullsThemElsewhere) {
  TempDir t;
  const fs::path remote = t / "remote";
  RunSync a(remote.string(), t / "stage-a");
  EXPECT_EQ(a.remote_run_file(), "");
  EXPECT_EQ(a.pull(), 0u);
  io::write_file_atomic(t / "stage-a" / "config.json", std::string("{}"));
  io::write_file_atomic(t / "stage-a" / "checkpoint.pt", std::string("ck1"));
  io::write_file_atomic(t / "stage-a" / "notes.txt", std::string("not a run file"));
  EXPECT_EQ(a.push(), 2u);
  EXPECT_EQ(a.push(), 0u);  // nothing changed
  // A rewrite within one tick of the file clock keeps size and time: the CRC must still see it.
  const auto tick = fs::last_write_time(t / "stage-a" / "checkpoint.pt");
  io::write_file_atomic(t / "stage-a" / "checkpoint.pt", std::string("ck2"));
  fs::last_write_time(t / "stage-a" / "checkpoint.pt", tick);
  EXPECT_EQ(a.push(), 1u);
  EXPECT_EQ(a.push(), 0u);
  EXPECT_EQ(text(remote / "checkpoint.pt"), "ck2");
  EXPECT_FALSE(fs::exists(remote / "notes.txt"));
  EXPECT_NE(a.remote_run_file().find("config.json"), std::string::npos);

  // Another machine: a stale last.pt in its staging folder is dropped, the remote's files arrive.
  fs::create_directories(t / "stage-b");
  io::write_file_atomic(t / "stage-b" / "last.pt", std::string("stale"));
  RunSync b(remote.string(), t / "stage-b");
  EXPECT_EQ(b.pull(), 2u);
  EXPECT_FALSE(fs::exists(t / "stage-b" / "last.pt"));
  EXPECT_EQ(text(t / "stage-b" / "checkpoint.pt"), "ck2");
  EXPECT_EQ(b.push(), 0u);  // what was pulled is not pushed back
  // An old file time is trusted without reading: the same size and time count as unchanged.
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(t / "stage-b" / "checkpoint.pt", old);
  EXPECT_EQ(b.push(), 1u);  // a new time is a change
  io::write_file_atomic(t / "stage-b" / "checkpoint.pt", std::string("ck3"));
  fs::last_write_time(t / "stage-b" / "checkpoint.pt", old);
  EXPECT_EQ(b.push(), 0u);
  EXPECT_EQ(text(remote / "checkpoint.pt"), "ck2");
  b.clear();
  EXPECT_EQ(b.remote_run_file(), "");
}

TEST(RunSync, DefaultStagingMirrorsTheUrlWithoutEscaping) {
  const fs::path p = RunSync::default_staging("s3://bucket/runs/../r1");
  EXPECT_EQ(p.filename(), "r1");
  EXPECT_EQ(p.string().find(".."), std::string::npos);
  EXPECT_NE(p.string().find("segscale-runs/bucket/runs/r1"), std::string::npos);
}

TEST(Staging, LocalPathsPassThroughAndNothingIsUploaded) {
  storage::Staging s;
  EXPECT_EQ(s.input_file("/data/x.nii.gz"), fs::path("/data/x.nii.gz"));
  EXPECT_EQ(s.output_file("out/seg.nii.gz"), fs::path("out/seg.nii.gz"));
  EXPECT_EQ(s.output_folder("out"), fs::path("out"));
  EXPECT_EQ(s.upload(), 0u);
}

}  // namespace
}  // namespace segscale::train
