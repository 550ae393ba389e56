#include "prep/share.h"

#include <gtest/gtest.h>

#include "../support/temp_dir.h"
#include "util/error.h"

namespace segscale::prep {
namespace {

using segscale::testing::expect_error_containing;

TEST(Share, ParsesFlag) {
  auto s = parse_share("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  EXPECT_THROW(parse_share("5/5"), UsageError);
  EXPECT_THROW(parse_share("a/b"), UsageError);
  EXPECT_THROW(parse_share("3"), UsageError);
}

TEST(Share, FromSchedulers) {
  auto slurm_array = share_from_environment({{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "3"}}, {});
  EXPECT_EQ(slurm_array->index, 2);
  EXPECT_EQ(slurm_array->count, 4);
  auto slurm = share_from_environment({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "3"}}, {});
  EXPECT_EQ(slurm->index, 1);
  auto mpi = share_from_environment({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "8"}}, {});
  EXPECT_EQ(mpi->index, 3);
  EXPECT_EQ(mpi->count, 8);
  auto k8s = share_from_environment({{"JOB_COMPLETION_INDEX", "6"}}, 10);
  EXPECT_EQ(k8s->index, 6);
  EXPECT_EQ(k8s->count, 10);
  expect_error_containing([] { share_from_environment({{"JOB_COMPLETION_INDEX", "6"}}, {}); }, {"--shard-count"});
  auto sm = share_from_environment({{"SM_CURRENT_HOST", "algo-2"}, {"SM_HOSTS", R"(["algo-1","algo-2","algo-3"])"}}, {});
  EXPECT_EQ(sm->index, 1);
  EXPECT_EQ(sm->count, 3);
  expect_error_containing([] { share_from_environment({{"SM_CURRENT_HOST", "x"}, {"SM_HOSTS", R"(["a"])"}}, {}); }, {"not in SM_HOSTS"});
  expect_error_containing([] { share_from_environment({{"SLURM_PROCID", "x"}, {"SLURM_NTASKS", "2"}}, {}); }, {"SLURM_PROCID"});
  EXPECT_FALSE(share_from_environment({{"HOME", "/root"}}, {}).has_value());
}

TEST(Share, KeysSpreadOverShares) {
  std::array<int, 4> hist{};
  for (int i = 0; i < 400; ++i) ++hist[share_of("shard-" + std::to_string(i), 4)];
  for (int h : hist) EXPECT_GT(h, 60);
}

}  // namespace
}  // namespace segscale::prep
