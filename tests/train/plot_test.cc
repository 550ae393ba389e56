// segscale plot's x axis: step numbers as ticks that are whole and shown once each (issue 22, item 5).
#include "train/plot.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

namespace segscale::train {
namespace {

TEST(PlotAxis, ThreeStepRunIsLabelledZeroToThree) {
  EXPECT_EQ(axis_ticks(3, 4, true), (std::vector<double>{0, 1, 2, 3}));  // was "0 1 2 2 3"
  EXPECT_EQ(axis_ticks(1, 4, true), (std::vector<double>{0, 1}));
  EXPECT_EQ(axis_ticks(10, 4, true), (std::vector<double>{0, 5, 10}));
  EXPECT_EQ(axis_ticks(120, 4, true), (std::vector<double>{0, 50, 100}));
  EXPECT_EQ(axis_ticks(0.8, 4, false).size(), 5u);  // 0, 0.2, ..., 0.8: fractional steps where asked for
}

TEST(PlotAxis, EveryRunLengthGetsDistinctWholeLabelsWithinTheAxis) {
  for (int n = 1; n <= 5000; ++n) {
    const auto t = axis_ticks(n, 4, true);
    std::set<std::string> shown;
    for (double v : t) {
      EXPECT_EQ(v, static_cast<double>(static_cast<long>(v))) << n;
      EXPECT_LE(v, n) << n;
      shown.insert(fmt::format("{:.0f}", v));
    }
    EXPECT_EQ(shown.size(), t.size()) << n;
    EXPECT_GE(t.size(), 2u) << n;
    EXPECT_LE(t.size(), 5u) << n;
  }
}

}  // namespace
}  // namespace segscale::train
