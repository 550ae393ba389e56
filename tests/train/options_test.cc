#include "train/options.h"

#include <gtest/gtest.h>

#include <fstream>

#include "../support/temp_dir.h"
#include "util/error.h"

namespace segscale::train {
namespace {

using segscale::testing::expect_error_containing;

TrainOptions valid() {
  TrainOptions o;
  o.store = "st";
  o.out = "run";
  return o;
}

TEST(RunLength, AsHuggingFaceAndLightningDefineIt) {
  TrainOptions o = valid();
  EXPECT_EQ(run_length(o).total_steps(7), 7);  // neither: one epoch
  o.max_steps = 20;
  EXPECT_EQ(run_length(o).total_steps(7), 20);  // steps alone: as many epochs as it takes
  EXPECT_FALSE(run_length(o).epoch_limit_reached(100));
  o.epochs = 2;
  EXPECT_EQ(run_length(o).total_steps(7), 14);  // both: the first limit
  o.epochs = 5;
  EXPECT_EQ(run_length(o).total_steps(7), 20);
  EXPECT_TRUE(run_length(o).epoch_limit_reached(5));
  o.max_steps.reset();
  EXPECT_EQ(run_length(o).total_steps(7), 35);
}

TEST(CheckOptions, NamesTheFlagAndTheRange) {
  EXPECT_NO_THROW(check_options(valid()));
  auto bad = [](auto change, std::initializer_list<std::string> needles) {
    TrainOptions o = valid();
    change(o);
    expect_error_containing([&] { check_options(o); }, needles);
    EXPECT_THROW(check_options(o), UsageError);
  };
  bad([](TrainOptions& o) { o.max_steps = 0; }, {"--max-steps 0", "at least 1"});
  bad([](TrainOptions& o) { o.epochs = 0; }, {"--epochs 0"});
  bad([](TrainOptions& o) { o.val_fraction = 1.0; }, {"--val-fraction 1", "[0, 1)"});
  bad([](TrainOptions& o) { o.lr = -1; }, {"--lr -1"});
  bad([](TrainOptions& o) { o.weight_decay = -0.5; }, {"--weight-decay -0.5"});
  bad([](TrainOptions& o) { o.checkpoint_every = -3; }, {"--checkpoint-every -3"});
  bad([](TrainOptions& o) { o.timeout_s = 0; }, {"--timeout 0"});
  bad([](TrainOptions& o) { o.data = "ds"; }, {"not both"});
  bad([](TrainOptions& o) { o.store.clear(); }, {"--store STORE", "--data DATASET"});
  bad([](TrainOptions& o) { o.pipeline = "p.json"; }, {"--pipeline applies to --data"});
}

TEST(RunFolder, RefusesAnExistingRunUnlessResumedOrOverwritten) {
  segscale::testing::TempDir dir;
  EXPECT_NO_THROW(prepare_run_folder(dir.path() / "new", false, false, true));
  std::ofstream(dir / "metrics.jsonl") << "{}\n";
  std::ofstream(dir / "model.pt") << "w";
  std::ofstream(dir / "notes.txt") << "mine";
  expect_error_containing([&] { prepare_run_folder(dir.path(), false, false, true); }, {"already holds a training run", "--resume", "--overwrite"});
  EXPECT_NO_THROW(prepare_run_folder(dir.path(), true, false, true));
  EXPECT_TRUE(std::filesystem::exists(dir / "model.pt"));
  prepare_run_folder(dir.path(), false, true, /*writer=*/false);  // only rank 0 deletes
  EXPECT_TRUE(std::filesystem::exists(dir / "model.pt"));
  prepare_run_folder(dir.path(), false, true, true);
  EXPECT_FALSE(std::filesystem::exists(dir / "model.pt"));
  EXPECT_FALSE(std::filesystem::exists(dir / "metrics.jsonl"));
  EXPECT_TRUE(std::filesystem::exists(dir / "notes.txt"));
}

TEST(RunFolder, AStartThatNeverTrainedIsNoRun) {
  EXPECT_FALSE(holds_a_run(false, ""));
  EXPECT_FALSE(holds_a_run(false, "\n \n"));
  EXPECT_TRUE(holds_a_run(false, "{\"type\": \"step\"}\n"));
  EXPECT_TRUE(holds_a_run(true, ""));
  segscale::testing::TempDir dir;
  std::ofstream(dir / "config.json") << "{}\n";
  std::ofstream(dir / "metrics.jsonl") << "";
  std::ofstream(dir / "splits.json") << "[]\n";
  std::ofstream(dir / "notes.txt") << "mine";
  prepare_run_folder(dir.path(), false, false, /*writer=*/false);  // other ranks leave the files to rank 0
  EXPECT_TRUE(std::filesystem::exists(dir / "config.json"));
  EXPECT_NO_THROW(prepare_run_folder(dir.path(), false, false, true));
  EXPECT_FALSE(std::filesystem::exists(dir / "config.json"));
  EXPECT_FALSE(std::filesystem::exists(dir / "metrics.jsonl"));
  EXPECT_FALSE(std::filesystem::exists(dir / "splits.json"));
  EXPECT_TRUE(std::filesystem::exists(dir / "notes.txt"));
}

}  // namespace
}  // namespace segscale::train
