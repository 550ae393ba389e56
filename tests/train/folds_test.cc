// nnU-Net's cross-validation split. The expected folds are numpy's RandomState(12345).shuffle(arange(N)) cut as
// sklearn's KFold cuts it (computed with numpy); tests/oracle/test_nnunet_plan.py compares with nnunetv2 itself.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "io/file.h"
#include "train/split.h"
#include "util/error.h"

namespace segscale::train {
namespace {

std::vector<std::string> keys(int n) {
  std::vector<std::string> k;
  for (int i = n - 1; i >= 0; --i) k.push_back((i < 10 ? "c0" : "c") + std::to_string(i));  // unsorted on purpose
  return k;
}

TEST(NnunetFolds, SevenCasesAsKFoldCutsNumpysShuffle) {
  // RandomState(12345).shuffle(arange(7)) = [6, 3, 4, 0, 1, 5, 2]; fold sizes 2, 2, 1, 1, 1.
  const auto folds = nnunet_kfold(keys(7));
  ASSERT_EQ(folds.size(), 5u);
  const std::vector<std::vector<std::string>> val = {{"c03", "c06"}, {"c00", "c04"}, {"c01"}, {"c05"}, {"c02"}};
  for (std::size_t f = 0; f < 5; ++f) {
    EXPECT_EQ(folds[f].val, val[f]) << "fold " << f;
    EXPECT_EQ(folds[f].train.size() + folds[f].val.size(), 7u);
    EXPECT_TRUE(std::is_sorted(folds[f].train.begin(), folds[f].train.end()));
  }
}

TEST(NnunetFolds, BeyondTheFoldsIsARandomEightyTwentySplit) {
  // RandomState(12345 + 6).choice(7, 5, replace=False) = [6, 1, 2, 0, 4]
  const Fold f = nnunet_fold(nnunet_kfold(keys(7)), keys(7), 6);
  EXPECT_EQ(f.train, (std::vector<std::string>{"c06", "c01", "c02", "c00", "c04"}));
  EXPECT_EQ(f.val, (std::vector<std::string>{"c03", "c05"}));
  const Fold all = nnunet_fold({}, keys(3), -1);
  EXPECT_EQ(all.train, all.val);
  EXPECT_EQ(all.train.size(), 3u);
}

TEST(NnunetFolds, TooFewCasesAndBadSplitsFilesAreNamed) {
  EXPECT_THROW(nnunet_kfold(keys(4)), Error);
  const auto dir = std::filesystem::temp_directory_path() / ("segscale_folds_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const std::string& bad : {std::string("{}"), std::string("[{\"train\": [\"a\"]}]"), std::string("[{\"train\": 1, \"val\": []}]")}) {
    io::write_file_atomic(dir / "splits_final.json", bad);
    try {
      read_splits_file((dir / "splits_final.json").string());
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("splits_final.json"), std::string::npos) << e.what();
    }
  }
  std::vector<store::SampleRef> samples;
  for (const auto& k : keys(5)) samples.push_back({k, k, 0, 0, {}, {}, {}});
  try {
    split_by_fold(samples, Fold{{"c00"}, {"c99"}}, true, "splits_final.json");
    ADD_FAILURE() << "a missing case accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("c99"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace segscale::train
