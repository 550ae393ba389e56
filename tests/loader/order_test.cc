// The epoch order without libtorch: torch.randperm's permutation (values printed by PyTorch 1.13) and
// DistributedSampler's padding, cutting and striding.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "loader/order.h"
#include "util/error.h"

namespace segscale::loader {
namespace {

TEST(TorchRandperm, MatchesPyTorchPrintedValues) {
  // g = torch.Generator(); g.manual_seed(seed); torch.randperm(n, generator=g).tolist()
  EXPECT_EQ(torch_randperm(10, 0), (std::vector<std::int64_t>{4, 1, 7, 5, 3, 9, 0, 8, 6, 2}));
  EXPECT_EQ(torch_randperm(5, 7), (std::vector<std::int64_t>{0, 1, 3, 2, 4}));
  EXPECT_EQ(torch_randperm(8, 4294967303ull), (std::vector<std::int64_t>{7, 0, 3, 4, 1, 5, 2, 6}));  // low 32 bits seed
  EXPECT_TRUE(torch_randperm(0, 3).empty());
  EXPECT_EQ(torch_randperm(1, 3), (std::vector<std::int64_t>{0}));
}

TEST(TorchRandperm, RejectsSizesItDoesNotReproduce) {
  EXPECT_THROW(torch_randperm(-1, 0), Error);
  EXPECT_THROW(torch_randperm(std::int64_t{1} << 40, 0), Error);
}

TEST(DistributedOrder, RanksPartitionThePaddedEpoch) {
  for (int world : {1, 2, 3, 4}) {
    for (std::int64_t n : {1, 5, 8, 11}) {
      std::multiset<std::int64_t> all;
      std::size_t per = 0;
      for (int rank = 0; rank < world; ++rank) {
        auto o = distributed_order(n, 3, 2, true, rank, world, false);
        if (rank == 0) per = o.size();
        EXPECT_EQ(o.size(), per) << "every rank gets the same count";
        all.insert(o.begin(), o.end());
      }
      EXPECT_EQ(all.size(), per * static_cast<std::size_t>(world));
      EXPECT_EQ(per, static_cast<std::size_t>((n + world - 1) / world));
      for (std::int64_t i = 0; i < n; ++i) EXPECT_GE(all.count(i), 1u) << "sample " << i << " missing, n " << n << " world " << world;
    }
  }
}

TEST(DistributedOrder, DropLastCutsAndNoShuffleIsIdentity) {
  EXPECT_EQ(distributed_order(5, 0, 0, false, 0, 1, false), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(distributed_order(5, 0, 0, false, 1, 2, true), (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(distributed_order(5, 0, 0, false, 1, 2, false), (std::vector<std::int64_t>{1, 3, 0}));
  EXPECT_TRUE(distributed_order(1, 0, 0, true, 1, 2, true).empty());
  // shuffle: randperm seeded by seed + epoch
  EXPECT_EQ(distributed_order(10, 0, 0, true, 0, 1, false), torch_randperm(10, 0));
  EXPECT_EQ(distributed_order(10, 3, 4, true, 0, 1, false), torch_randperm(10, 7));
}

}  // namespace
}  // namespace segscale::loader
