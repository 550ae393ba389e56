#include "env/share.h"

#include <gtest/gtest.h>

#include <array>
#include <fstream>

#include "../support/job_environment.h"
#include "../support/temp_dir.h"
#include "prep/share.h"
#include "util/error.h"

namespace segscale::env {
namespace {

using segscale::testing::expect_error_containing;
using segscale::testing::vars;

TEST(Share, ParsesFlag) {
  auto s = parse_share("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  EXPECT_THROW(parse_share("5/5"), UsageError);
  EXPECT_THROW(parse_share("-1/5"), UsageError);
  expect_error_containing([] { parse_share("a/b"); }, {"--shard index", "'a'"});
  expect_error_containing([] { parse_share("1/4x"); }, {"--shard count", "'4x'"});
  expect_error_containing([] { parse_share("3"); }, {"I/N"});
}

// Each scheduler's real variable set (as the scheduler exports it, with the neighbours it sets too).
TEST(Share, SlurmArray) {
  auto s = share_from_job(vars({{"SLURM_ARRAY_JOB_ID", "811"}, {"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_COUNT", "4"},
                                {"SLURM_ARRAY_TASK_MIN", "3"}, {"SLURM_ARRAY_TASK_MAX", "6"}, {"SLURM_JOB_ID", "813"}}),
                          {});
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 4);
  EXPECT_EQ(s->source, "Slurm array");
}

TEST(Share, SlurmTasksOpenMpiKubernetes) {
  auto slurm = share_from_job(vars({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "3"}, {"SLURM_LOCALID", "1"}, {"SLURM_JOB_NODELIST", "n[1-3]"}}), {});
  EXPECT_EQ(slurm->index, 1);
  EXPECT_EQ(slurm->count, 3);
  auto mpi = share_from_job(vars({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}}), {});
  EXPECT_EQ(mpi->index, 3);
  EXPECT_EQ(mpi->count, 8);
  auto k8s = share_from_job(vars({{"JOB_COMPLETION_INDEX", "6"}, {"HOSTNAME", "prep-6-x7c"}}), 10);
  EXPECT_EQ(k8s->index, 6);
  EXPECT_EQ(k8s->count, 10);
  expect_error_containing([] { share_from_job(vars({{"JOB_COMPLETION_INDEX", "6"}}), {}); }, {"--shard-count"});
  expect_error_containing([] { share_from_job(vars({{"JOB_COMPLETION_INDEX", "10"}}), 10); }, {"10/10", "Kubernetes"});
}

TEST(Share, SageMakerVariablesAndProcessingFile) {
  auto sm = share_from_job(vars({{"SM_CURRENT_HOST", "algo-2"}, {"SM_HOSTS", R"(["algo-1","algo-2","algo-3"])"}}), {});
  EXPECT_EQ(sm->index, 1);
  EXPECT_EQ(sm->count, 3);
  expect_error_containing([] { share_from_job(vars({{"SM_CURRENT_HOST", "x"}, {"SM_HOSTS", R"(["a"])"}}), {}); }, {"not in the hosts"});
  expect_error_containing([] { share_from_job(vars({{"SM_CURRENT_HOST", "x"}, {"SM_HOSTS", "a,b"}}), {}); }, {"SM_HOSTS", "JSON"});

  // A Processing job: only /opt/ml/config/resourceconfig.json, as the platform writes it.
  segscale::testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "config");
  std::ofstream(dir.path() / "config" / "resourceconfig.json")
      << R"({"current_host": "algo-3", "hosts": ["algo-1", "algo-2", "algo-3", "algo-4"]})";
  JobEnvironment e = vars({});
  e.sagemaker_root = dir.path();
  auto p = share_from_job(e, {});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->index, 2);
  EXPECT_EQ(p->count, 4);
  EXPECT_NE(p->source.find("resourceconfig.json"), std::string::npos);
  std::ofstream(dir.path() / "config" / "resourceconfig.json") << R"({"current_host": "algo-9", "hosts": ["algo-1"]})";
  expect_error_containing([&] { share_from_job(e, {}); }, {"resourceconfig.json", "algo-9", "not in the hosts"});
  std::ofstream(dir.path() / "config" / "resourceconfig.json") << R"({"current_host": "algo-1", "hosts": ["algo-1")";
  expect_error_containing([&] { share_from_job(e, {}); }, {"resourceconfig.json", "malformed JSON"});
  std::ofstream(dir.path() / "config" / "resourceconfig.json") << R"({"hosts": ["algo-1"]})";
  expect_error_containing([&] { share_from_job(e, {}); }, {"resourceconfig.json", "current_host"});
}

TEST(Share, BadValuesNameTheVariable) {
  expect_error_containing([] { share_from_job(vars({{"SLURM_PROCID", "x"}, {"SLURM_NTASKS", "2"}}), {}); }, {"SLURM_PROCID", "'x'"});
  expect_error_containing([] { share_from_job(vars({{"OMPI_COMM_WORLD_RANK", "4"}, {"OMPI_COMM_WORLD_SIZE", "4"}}), {}); }, {"4/4", "Open MPI"});
  EXPECT_FALSE(share_from_job(vars({{"HOME", "/root"}}), {}).has_value());
  EXPECT_FALSE(share_from_job(vars({{"SLURM_PROCID", ""}, {"SLURM_NTASKS", ""}}), {}).has_value());  // empty = unset
}

TEST(Share, KeysSpreadOverShares) {
  std::array<int, 4> hist{};
  for (int i = 0; i < 400; ++i) ++hist[prep::share_of("shard-" + std::to_string(i), 4)];
  for (int h : hist) EXPECT_GT(h, 60);
}

}  // namespace
}  // namespace segscale::env
