#include "transforms/label_map_choice.h"

#include <gtest/gtest.h>

#include "../support/temp_dir.h"
#include "util/error.h"

namespace segscale::transforms {
namespace {

using segscale::testing::expect_error_containing;

Pipeline with_map(const std::string& name, bool from_file) {
  Pipeline p = Pipeline::case_study();
  p.label_map = name;
  p.label_map_from_file = from_file;
  return p;
}

TEST(LabelMapChoice, TheDataWinsOverADefaultAndAFileMustAgree) {
  const Pipeline preset = with_map("blog", false), file = with_map("blog", true), msd_file = with_map("msd", true);
  // A preset's (or the chain's default) map: the data's numbering.
  EXPECT_EQ(choose_label_map({"", &preset, "case-study", "brats23", "BraTS 2023 file names", "D", {}}).name, "brats23");
  // A file naming another map than the data's: refused, naming the file, the data and both fixes.
  expect_error_containing([&] { choose_label_map({"", &file, "p.json", "brats23", "BraTS 2023 file names", "D", {}}); },
                          {"p.json", "\"label_map\" is blog", "numbered as brats23", "remove \"label_map\"", "--label-map blog"});
  // ... unless the data allows that reading (MSD's labels read as blog or msd).
  EXPECT_EQ(choose_label_map({"", &msd_file, "p.json", "blog", "MSD dataset.json", "D", {"msd"}}).name, "msd");
  // The flag is the user's choice, said beside the data's numbering.
  const LabelMapChoice c = choose_label_map({"blog", &file, "p.json", "brats23", "BraTS 2023 file names", "D", {}});
  EXPECT_EQ(c.name, "blog");
  EXPECT_NE(c.describe().find("although the data is numbered as brats23"), std::string::npos) << c.describe();
  // No numbering in the data: the pipeline's.
  EXPECT_EQ(choose_label_map({"", &msd_file, "p.json", "", "", "D", {}}).name, "msd");
  EXPECT_THROW(choose_label_map({"nope", &preset, "", "brats21", "", "D", {}}), UsageError);
}

TEST(LabelMapChoice, OnlyAFileOrAStoreMarksItsMapAsGiven) {
  EXPECT_FALSE(Pipeline::case_study().label_map_from_file);
  EXPECT_TRUE(Pipeline::from_json(nlohmann::json::parse(R"({"label_map": "msd", "transforms": []})"), "f").label_map_from_file);
  EXPECT_FALSE(Pipeline::from_json(nlohmann::json::parse(R"({"transforms": []})"), "f").label_map_from_file);
}

}  // namespace
}  // namespace segscale::transforms
