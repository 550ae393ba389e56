#include "env/world.h"

#include <gtest/gtest.h>

#include <fstream>

#include "../support/job_environment.h"
#include "../support/temp_dir.h"
#include "util/error.h"

namespace segscale::env {
namespace {

using segscale::testing::expect_error_containing;
using segscale::testing::vars;

TEST(World, Torchrun) {  // as torchrun / segscale launch export them
  auto w = world_from_job(vars({{"RANK", "5"}, {"LOCAL_RANK", "1"}, {"WORLD_SIZE", "8"}, {"LOCAL_WORLD_SIZE", "4"}, {"GROUP_RANK", "1"},
                                {"MASTER_ADDR", "node-0"}, {"MASTER_PORT", "29400"}, {"TORCHELASTIC_RUN_ID", "none"}}));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->rank, 5);
  EXPECT_EQ(w->local_rank, 1);
  EXPECT_EQ(w->size, 8);
  EXPECT_EQ(w->local_size, 4);
  EXPECT_EQ(w->master_addr, "node-0");
  EXPECT_EQ(w->master_port, 29400);
  // One process needs no master; several do.
  EXPECT_EQ(world_from_job(vars({{"RANK", "0"}, {"WORLD_SIZE", "1"}}))->master_addr, "127.0.0.1");
  expect_error_containing([] { world_from_job(vars({{"RANK", "0"}, {"WORLD_SIZE", "2"}})); }, {"MASTER_ADDR"});
  EXPECT_FALSE(w->agent_store);  // segscale launch: rank 0 serves the store
  EXPECT_EQ(w->restart_count, 0);
  // torchrun itself: its agent serves the store, and it counts the group's restarts.
  auto t = world_from_job(vars({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"},
                                {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "2"}, {"TORCHELASTIC_RUN_ID", "job7"}}));
  EXPECT_TRUE(t->agent_store);
  EXPECT_EQ(t->restart_count, 2);
  EXPECT_EQ(t->run_id, "job7");
  EXPECT_EQ(t->source, "torchrun");
  EXPECT_FALSE(world_from_job(vars({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"TORCHELASTIC_USE_AGENT_STORE", "False"}}))->agent_store);
  expect_error_containing([] { world_from_job(vars({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"TORCHELASTIC_RESTART_COUNT", "x"}})); },
                          {"TORCHELASTIC_RESTART_COUNT", "not an integer"});
}

TEST(World, OpenMpi) {
  auto w = world_from_job(vars({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}, {"OMPI_COMM_WORLD_NODE_RANK", "1"}, {"MASTER_ADDR", "10.0.0.1"}}));
  EXPECT_EQ(w->rank, 3);
  EXPECT_EQ(w->local_rank, 1);
  EXPECT_EQ(w->local_size, 2);
  EXPECT_EQ(w->master_addr, "10.0.0.1");
  EXPECT_EQ(w->source, "Open MPI");
  expect_error_containing([] { world_from_job(vars({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"}})); }, {"Open MPI", "MASTER_ADDR"});
}

TEST(World, Slurm) {
  auto w = world_from_job(vars({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "1"}, {"SLURM_NTASKS_PER_NODE", "2(x2)"},
                                {"SLURM_JOB_NODELIST", "gpu[03-04]"}, {"SLURM_NODEID", "1"}}));
  EXPECT_EQ(w->rank, 3);
  EXPECT_EQ(w->local_size, 2);
  EXPECT_EQ(w->master_addr, "gpu03");
  EXPECT_EQ(w->master_port, 29500);
  EXPECT_EQ(first_slurm_host("gpu[03-05,07],cpu1"), "gpu03");
  EXPECT_EQ(first_slurm_host("cpu1,gpu[03-05]"), "cpu1");
  EXPECT_EQ(first_slurm_host("single"), "single");
}

TEST(World, SageMakerVariablesAndTrainingFile) {
  auto w = world_from_job(vars({{"SM_HOSTS", R"(["algo-1","algo-2"])"}, {"SM_CURRENT_HOST", "algo-2"}, {"SM_NUM_GPUS", "4"}, {"LOCAL_RANK", "3"}}));
  EXPECT_EQ(w->size, 8);
  EXPECT_EQ(w->rank, 7);
  EXPECT_EQ(w->master_addr, "algo-1");

  // A bring-your-own-container Training job: only /opt/ml/input/config/resourceconfig.json.
  segscale::testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "input" / "config");
  std::ofstream(dir.path() / "input" / "config" / "resourceconfig.json")
      << R"({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "eth0"})";
  JobEnvironment e = vars({});
  e.sagemaker_root = dir.path();
  auto f = world_from_job(e);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->size, 2);
  EXPECT_EQ(f->rank, 1);
  EXPECT_EQ(f->master_addr, "algo-1");
  // The processing file does not make a training world.
  JobEnvironment p = vars({});
  p.sagemaker_root = dir.path() / "elsewhere";
  EXPECT_FALSE(world_from_job(p).has_value());
}

TEST(World, BadValues) {
  expect_error_containing([] { world_from_job(vars({{"RANK", "two"}, {"WORLD_SIZE", "4"}})); }, {"RANK", "'two'", "not an integer"});
  expect_error_containing([] { world_from_job(vars({{"RANK", "4"}, {"WORLD_SIZE", "4"}, {"MASTER_ADDR", "a"}})); }, {"rank 4", "world of 4"});
  expect_error_containing([] { world_from_job(vars({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}})); },
                          {"local rank 2"});
  expect_error_containing([] { world_from_job(vars({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}})); },
                          {"MASTER_PORT", "70000"});
  expect_error_containing([] { world_from_job(vars({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}, {"SLURM_NTASKS_PER_NODE", "x"}})); },
                          {"SLURM_NTASKS_PER_NODE"});
  EXPECT_FALSE(world_from_job(vars({{"PATH", "/usr/bin"}})).has_value());
}

}  // namespace
}  // namespace segscale::env
