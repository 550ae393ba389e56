#include "env/restart.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <chrono>
#include <fstream>

#include "../support/temp_dir.h"

namespace segscale::env {
namespace {

namespace fs = std::filesystem;

// Writes `name` in `dir` with a modification time of `t` seconds since the epoch.
void file_at(const fs::path& dir, const std::string& name, double t) {
  std::ofstream(dir / name) << "x";
  utimbuf times{static_cast<time_t>(t), static_cast<time_t>(t)};
  ASSERT_EQ(::utime((dir / name).c_str(), &times), 0);
}

World restarted(int count) {
  World w;
  w.restart_count = count;
  w.run_id = "job";
  return w;
}

TEST(RestartPlan, FirstAttemptChangesNothing) {
  segscale::testing::TempDir dir;
  file_at(dir.path(), "checkpoint.pt", 2000);
  const auto plan = plan_restart(restarted(0), dir / "checkpoint.pt", dir.path(), false, 1000.0);
  EXPECT_FALSE(plan.resume);
  EXPECT_FALSE(plan.overwrite);
  EXPECT_EQ(plan.note, "");
}

TEST(RestartPlan, ResumesOnlyACheckpointThisJobWrote) {
  segscale::testing::TempDir dir;
  file_at(dir.path(), "config.json", 2000);
  file_at(dir.path(), "checkpoint.pt", 2010);
  auto plan = plan_restart(restarted(1), dir / "checkpoint.pt", dir.path(), false, 1000.0);  // launcher started before
  EXPECT_TRUE(plan.resume);
  EXPECT_FALSE(plan.overwrite);
  EXPECT_NE(plan.note.find("torchrun restart 1 (run id job): resuming from"), std::string::npos) << plan.note;
  plan = plan_restart(restarted(1), dir / "checkpoint.pt", dir.path(), false, 3000.0);  // an older run's checkpoint
  EXPECT_FALSE(plan.resume);
  EXPECT_FALSE(plan.overwrite);
  EXPECT_NE(plan.note.find("predates this job"), std::string::npos) << plan.note;
  plan = plan_restart(restarted(1), dir / "checkpoint.pt", dir.path(), false, std::nullopt);  // launcher unknown: no guess
  EXPECT_FALSE(plan.resume);
}

TEST(RestartPlan, NoCheckpointYetStartsAfreshOverOnlyItsOwnFiles) {
  segscale::testing::TempDir dir;
  auto plan = plan_restart(restarted(2), dir / "checkpoint.pt", dir.path(), false, 1000.0);  // nothing written
  EXPECT_FALSE(plan.resume);
  EXPECT_FALSE(plan.overwrite);
  file_at(dir.path(), "config.json", 2000);
  file_at(dir.path(), "metrics.jsonl", 2001);
  plan = plan_restart(restarted(2), dir / "checkpoint.pt", dir.path(), false, 1000.0);
  EXPECT_TRUE(plan.overwrite);
  EXPECT_FALSE(plan.resume);
  file_at(dir.path(), "model.pt", 500);  // one file from before the job: the command line decides
  plan = plan_restart(restarted(2), dir / "checkpoint.pt", dir.path(), false, 1000.0);
  EXPECT_FALSE(plan.overwrite);
}

TEST(RestartPlan, RemoteRunFolderResumesWhateverCheckpointItHas) {
  segscale::testing::TempDir dir;
  const auto plan = plan_restart(restarted(1), dir / "checkpoint.pt", dir.path(), true, std::nullopt);
  EXPECT_TRUE(plan.resume);
  EXPECT_FALSE(plan.overwrite);
}

TEST(RestartPlan, ParentStartTimeIsThePast) {
  const auto t = parent_start_time();
  ASSERT_TRUE(t.has_value());
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(*t, now);
  EXPECT_GT(*t, now - 365 * 24 * 3600.0);
}

}  // namespace
}  // namespace segscale::env
