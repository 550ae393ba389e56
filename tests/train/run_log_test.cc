// TensorBoard's event file (TFRecord framing, Event encoding, trimming on resume) and the MLflow settings rules.
// The event file is also read by TensorBoard's own reader in tests/cli/test_tracking.py.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "io/file.h"
#include "io/tfrecord.h"
#include "train/mlflow_log.h"
#include "train/run_log.h"
#include "train/tensorboard_log.h"
#include "util/error.h"

namespace segscale::train {
namespace {
namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("segscale_run_log_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<EventFields> read_events(const fs::path& p) {
  const io::Bytes b = io::read_file(p);
  const io::TfRecords r = io::tfrecord_split(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  EXPECT_FALSE(r.torn) << p;
  std::vector<EventFields> out;
  for (const auto& rec : r.records) out.push_back(parse_event(rec));
  return out;
}

TEST(TfRecord, MaskedCrcOfNothingIsTensorFlowsConstant) {
  // crc32c("") = 0, so the mask alone remains: TensorFlow's kMaskDelta.
  EXPECT_EQ(io::tfrecord_masked_crc("", 0), 0xa282ead8u);
  // crc32c("123456789") = 0xe3069283 (the CRC-32C check value), masked by hand.
  const std::uint32_t c = 0xe3069283u;
  EXPECT_EQ(io::tfrecord_masked_crc("123456789", 9), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(TfRecord, SplitStopsAtATornOrCorruptTail) {
  const std::string a = io::tfrecord_frame("first"), b = io::tfrecord_frame("second record");
  io::TfRecords r = io::tfrecord_split(a + b);
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[1], "second record");
  EXPECT_FALSE(r.torn);
  r = io::tfrecord_split(a + b.substr(0, b.size() - 3));  // killed mid-write
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(r.torn);
  EXPECT_EQ(r.valid_bytes, a.size());
  std::string bad = a + b;
  bad[a.size() + 14] ^= 1;  // a flipped bit in the second record's data
  r = io::tfrecord_split(bad);
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(r.torn);
}

TEST(TensorBoardLog, WritesVersionScalarsAndText) {
  const fs::path d = fresh_dir("write");
  const fs::path f = d / kTensorBoardFile;
  io::write_file_atomic(f, std::string("poison"));
  {
    TensorBoardLog tb(f, /*resume=*/false, 0);
    tb.scalar("train/loss", 0.75, 1);
    tb.text("config", "    {}", 0);
  }
  const auto ev = read_events(f);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].file_version, "brain.Event:2");
  EXPECT_EQ(ev[1].tag, "train/loss");
  ASSERT_TRUE(ev[1].simple_value);
  EXPECT_FLOAT_EQ(*ev[1].simple_value, 0.75f);
  EXPECT_EQ(ev[1].step, 1);
  EXPECT_GT(ev[1].wall_time, 1.7e9);
  EXPECT_EQ(ev[2].plugin, "text");
  EXPECT_EQ(ev[2].text, "    {}");
  fs::remove_all(d);
}

TEST(TensorBoardLog, ResumeKeepsStepsUpToTheCheckpointAndDropsATornTail) {
  const fs::path d = fresh_dir("resume");
  const fs::path f = d / kTensorBoardFile;
  {
    TensorBoardLog tb(f, false, 0);
    tb.text("config", "a", 0);
    for (int s = 1; s <= 5; ++s) tb.scalar("train/loss", s, s);
    tb.text("config", "resumed once", 3);
  }
  const io::Bytes raw = io::read_file(f);
  const std::string bytes(raw.begin(), raw.end());
  io::write_file_atomic(f, bytes + io::tfrecord_frame("torn").substr(0, 9));
  {
    TensorBoardLog tb(f, /*resume=*/true, 3);  // the checkpoint was at step 3
    tb.text("config", "resumed again", 3);
    tb.scalar("train/loss", 40, 4);
  }
  std::map<std::pair<std::string, std::int64_t>, int> seen;
  for (const auto& e : read_events(f)) ++seen[{e.tag, e.step}];
  for (const auto& [k, n] : seen) EXPECT_EQ(n, 1) << k.first << " at step " << k.second << " appears " << n << " times";
  EXPECT_EQ(seen.count({"train/loss", 5}), 0u);
  EXPECT_EQ(seen.count({"train/loss", 3}), 1u);
  EXPECT_EQ(seen.count({"config", 3}), 1u);
  const auto ev = read_events(f);
  EXPECT_EQ(ev.back().step, 4);
  EXPECT_FLOAT_EQ(*ev.back().simple_value, 40.0f);
  fs::remove_all(d);
}

TEST(TensorBoardLog, UnwritableFolderIsNamed) {
  try {
    TensorBoardLog tb("/proc/segscale-no/events", false, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/segscale-no"), std::string::npos) << e.what();
  }
}

TEST(RunLog, LineScalarsNameTrainAndValidationTags) {
  const auto s = line_scalars({{"type", "step"}, {"epoch", 0}, {"step", 4}, {"loss", 0.5}, {"lr", 1e-4}});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].first, "train/loss");
  EXPECT_EQ(s[1].first, "train/lr");
  const auto v = line_scalars({{"type", "val"}, {"step", 4}, {"dice_tc", 0.25}, {"val_samples", 3}});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].first, "val/dice_tc");
  EXPECT_TRUE(line_scalars({{"type", "resume"}, {"step", 4}, {"epochs", 3}}).empty());
}

TEST(RunLog, FlattenParamsJoinsKeys) {
  const auto p = flatten_params({{"model", "unet"}, {"loss", {{"name", "dice"}, {"smooth", 1e-5}}}, {"roi", {128, 128, 64}}});
  std::map<std::string, std::string> m(p.begin(), p.end());
  EXPECT_EQ(m.at("model"), "unet");
  EXPECT_EQ(m.at("loss.name"), "dice");
  EXPECT_EQ(m.at("roi"), "[128,128,64]");
}

TEST(MlflowSettings, FromOptionsThenMlflowsVariables) {
  std::map<std::string, std::string> env;
  auto get = [&](const char* k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  EXPECT_FALSE(mlflow_settings("", "", "", "/runs/a", get));
  env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:5000/";
  env["MLFLOW_EXPERIMENT_NAME"] = "brats";
  auto s = mlflow_settings("", "", "", "/runs/a", get);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->uri, "http://127.0.0.1:5000");
  EXPECT_EQ(s->experiment, "brats");
  EXPECT_EQ(s->run_name, "a");
  s = mlflow_settings("http://h:1", "mine", "r1", "/runs/a", get);
  EXPECT_EQ(s->uri, "http://h:1");
  EXPECT_EQ(s->experiment, "mine");
  EXPECT_EQ(s->run_name, "r1");
  for (const char* bad : {"file:///tmp/mlruns", "databricks", "./mlruns"}) {
    try {
      mlflow_settings(bad, "", "", "/runs/a", get);
      ADD_FAILURE() << bad << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("mlflow server"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace segscale::train
