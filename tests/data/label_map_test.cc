#include "data/label_map.h"

#include <gtest/gtest.h>

#include "../support/temp_dir.h"
#include "util/error.h"

namespace segscale::data {
namespace {

using segscale::testing::expect_error_containing;

TEST(LabelMap, PresetsMatchTheSpec) {
  EXPECT_EQ(label_map_preset("blog").describe(), "TC={2,3} WT={1,2,3} ET={2}");
  EXPECT_EQ(label_map_preset("msd").describe(), "TC={2,3} WT={1,2,3} ET={3}");
  EXPECT_EQ(label_map_preset("brats21").describe(), "TC={1,4} WT={1,2,4} ET={4}");
  EXPECT_EQ(label_map_preset("brats23").describe(), "TC={1,3} WT={1,2,3} ET={3}");
  EXPECT_EQ(label_map_preset("brats21").known_values(), (std::vector<int>{0, 1, 2, 4}));
}

TEST(LabelMap, UnknownPresetIsAUsageErrorListingChoices) {
  try {
    label_map_preset("brats19");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("blog, msd, brats21, brats23"), std::string::npos);
  }
}

TEST(LabelMap, CountsAndRejectsUnknownValues) {
  std::vector<float> v = {0, 0, 1, 2, 4, 4};
  auto counts = count_and_check_labels(v.data(), v.size(), label_map_preset("brats21"), "seg.nii.gz");
  EXPECT_EQ(counts, (std::map<int, std::uint64_t>{{0, 2}, {1, 1}, {2, 1}, {4, 2}}));
  expect_error_containing([&] { count_and_check_labels(v.data(), v.size(), label_map_preset("blog"), "seg.nii.gz"); },
                          {"seg.nii.gz", "label value 4", "blog"});
  std::vector<float> frac = {0, 1.5f};
  expect_error_containing([&] { count_and_check_labels(frac.data(), 2, label_map_preset("blog"), "f.nii"); },
                          {"f.nii", "not a whole number"});
}

}  // namespace
}  // namespace segscale::data
