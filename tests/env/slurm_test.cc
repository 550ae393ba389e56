// Slurm's variables as Slurm 22.05's slurmd sets them (copied from `env` inside real jobs of the test cluster of
// tests/cli/test_slurm.py), read by world_from_job and share_from_job.
#include "env/slurm.h"

#include <gtest/gtest.h>

#include "../support/job_environment.h"
#include "../support/temp_dir.h"
#include "env/share.h"
#include "env/world.h"
#include "util/error.h"

namespace segscale::env {
namespace {

using segscale::testing::expect_error_containing;
using segscale::testing::vars;
using Vars = std::map<std::string, std::string>;

// `sbatch -n2 --wrap "srun ..."` on one node with 4 CPUs: what task `procid` of the step sees (no
// SLURM_NTASKS_PER_NODE: sbatch sets it only for --ntasks-per-node).
Vars srun_task_on_one_node(int procid) {
  return {{"SLURM_JOB_ID", "7"},        {"SLURM_JOBID", "7"},          {"SLURM_STEP_ID", "0"},           {"SLURM_STEPID", "0"},
          {"SLURM_PROCID", std::to_string(procid)},                    {"SLURM_LOCALID", std::to_string(procid)},
          {"SLURM_NODEID", "0"},        {"SLURM_NTASKS", "2"},         {"SLURM_NPROCS", "2"},            {"SLURM_NNODES", "1"},
          {"SLURM_TASKS_PER_NODE", "2"}, {"SLURM_STEP_TASKS_PER_NODE", "2"}, {"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_STEP_NUM_NODES", "1"},
          {"SLURM_JOB_NODELIST", "vm"}, {"SLURM_STEP_NODELIST", "vm"}, {"SLURM_NODELIST", "vm"},          {"SLURM_CPUS_ON_NODE", "4"},
          {"SLURM_GTIDS", "0,1"},       {"SLURMD_NODENAME", "vm"}};
}

TEST(Slurm, TwoTasksOnOneNode) {  // the bug: "local rank 1 is outside 1 local processes"
  for (int procid : {0, 1}) {
    auto w = world_from_job(vars(srun_task_on_one_node(procid)));
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->source, "Slurm");
    EXPECT_EQ(w->rank, procid);
    EXPECT_EQ(w->local_rank, procid);
    EXPECT_EQ(w->size, 2);
    EXPECT_EQ(w->local_size, 2);
    EXPECT_EQ(w->master_addr, "vm");
    EXPECT_EQ(w->master_port, 15007);  // 15000 + job id: jobs sharing a node take different ports
  }
  Vars v = srun_task_on_one_node(1);
  v["MASTER_ADDR"] = "10.1.2.3";
  v["MASTER_PORT"] = "29400";
  auto w = world_from_job(vars(v));
  EXPECT_EQ(w->master_addr, "10.1.2.3");
  EXPECT_EQ(w->master_port, 29400);
}

TEST(Slurm, SeveralNodesUnevenTasks) {  // srun -n7 -N3: 3 + 2 + 2 tasks; task 5 is the first on the third node
  Vars v = {{"SLURM_JOB_ID", "123456"}, {"SLURM_STEP_ID", "2"}, {"SLURM_PROCID", "5"}, {"SLURM_LOCALID", "0"}, {"SLURM_NODEID", "2"},
            {"SLURM_NTASKS", "7"}, {"SLURM_STEP_TASKS_PER_NODE", "3,2(x2)"}, {"SLURM_TASKS_PER_NODE", "3,2(x2)"},
            {"SLURM_JOB_NODELIST", "gpu[03-05,07]"}, {"SLURM_STEP_NODELIST", "gpu[04-05,07]"}};
  auto w = world_from_job(vars(v));
  EXPECT_EQ(w->rank, 5);
  EXPECT_EQ(w->local_rank, 0);
  EXPECT_EQ(w->local_size, 2);
  EXPECT_EQ(w->master_addr, "gpu04");  // task 0 runs on the step's first node
  EXPECT_EQ(w->master_port, 15000 + 3456);
  // The step's own count wins over the job's (srun -n2 inside a 4-task allocation).
  v = srun_task_on_one_node(1);
  v["SLURM_TASKS_PER_NODE"] = "4";
  EXPECT_EQ(world_from_job(vars(v))->local_size, 2);
  // Without a step list: the job's, then the request (--ntasks-per-node, one count for every node), then 1.
  v.erase("SLURM_STEP_TASKS_PER_NODE");
  v["SLURM_TASKS_PER_NODE"] = "1,2";
  v["SLURM_NODEID"] = "1";
  v["SLURM_LOCALID"] = "1";
  EXPECT_EQ(world_from_job(vars(v))->local_size, 2);
  v.erase("SLURM_TASKS_PER_NODE");
  v["SLURM_NTASKS_PER_NODE"] = "2";
  EXPECT_EQ(world_from_job(vars(v))->local_size, 2);
  v.erase("SLURM_NTASKS_PER_NODE");
  expect_error_containing([&] { world_from_job(vars(v)); }, {"Slurm: local rank 1 is outside 1 local processes"});
  // No job id (variables set by hand): the default port.
  EXPECT_EQ(world_from_job(vars({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}))->master_port, 29500);
}

TEST(Slurm, TasksPerNodeFormats) {
  using V = std::vector<int>;
  EXPECT_EQ(expand_slurm_tasks_per_node("2", "x"), V({2}));
  EXPECT_EQ(expand_slurm_tasks_per_node("2(x3)", "x"), V({2, 2, 2}));
  EXPECT_EQ(expand_slurm_tasks_per_node("2(x3),1", "x"), V({2, 2, 2, 1}));
  EXPECT_EQ(expand_slurm_tasks_per_node("4,1(x2),16", "x"), V({4, 1, 1, 16}));
  for (const char* bad : {"", "x", "2(3)", "2(x)", "2(x3", "2,,1", "2,", "-1", "2(x0)", "2(x3)1", "(x2)"})
    expect_error_containing([&] { expand_slurm_tasks_per_node(bad, "environment variable SLURM_TASKS_PER_NODE"); },
                            {"SLURM_TASKS_PER_NODE='" + std::string(bad) + "'", "not a Slurm task count list"});
  Vars v = srun_task_on_one_node(0);
  v["SLURM_STEP_TASKS_PER_NODE"] = "2(2)";
  expect_error_containing([&] { world_from_job(vars(v)); }, {"SLURM_STEP_TASKS_PER_NODE='2(2)'"});
  v["SLURM_STEP_TASKS_PER_NODE"] = "2";
  v["SLURM_NODEID"] = "1";
  expect_error_containing([&] { world_from_job(vars(v)); }, {"SLURM_NODEID=1", "SLURM_STEP_TASKS_PER_NODE='2'", "1 node"});
}

TEST(Slurm, BatchScriptIsOneProcess) {
  // `sbatch -n2` runs its script once, with SLURM_PROCID=0 and the job's SLURM_NTASKS but no SLURM_STEP_ID.
  Vars batch = {{"SLURM_JOB_ID", "9"}, {"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "0"}, {"SLURM_NODEID", "0"}, {"SLURM_NTASKS", "2"},
                {"SLURM_NPROCS", "2"}, {"SLURM_TASKS_PER_NODE", "2"}, {"SLURM_JOB_NODELIST", "vm"}, {"SLURM_CPUS_ON_NODE", "2"}};
  EXPECT_TRUE(is_slurm_batch_script(vars(batch)));
  EXPECT_FALSE(is_slurm_batch_script(vars(srun_task_on_one_node(0))));
  expect_error_containing([&] { world_from_job(vars(batch)); }, {"batch script of job 9", "SLURM_NTASKS=2", "srun segscale"});
  EXPECT_FALSE(share_from_job(vars(batch), {}).has_value());  // prep there does the whole store
  batch["SLURM_NTASKS"] = "1";
  EXPECT_EQ(world_from_job(vars(batch))->size, 1);
  auto s = share_from_job(vars(srun_task_on_one_node(1)), {});
  EXPECT_EQ(s->index, 1);
  EXPECT_EQ(s->count, 2);
  EXPECT_EQ(s->source, "Slurm tasks");
}

TEST(Slurm, ArrayShares) {
  // sbatch --array=0-3 (task 2), --array=0-6:2 (task 4), as the real cluster numbered them.
  Vars v = {{"SLURM_JOB_ID", "14"}, {"SLURM_ARRAY_JOB_ID", "12"}, {"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_MIN", "0"},
            {"SLURM_ARRAY_TASK_MAX", "3"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_STEP", "1"}, {"SLURM_PROCID", "0"},
            {"SLURM_NTASKS", "1"}};
  auto s = share_from_job(vars(v), {});
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 4);
  EXPECT_EQ(s->source, "Slurm array");
  v["SLURM_ARRAY_TASK_ID"] = "4";
  v["SLURM_ARRAY_TASK_MAX"] = "6";
  v["SLURM_ARRAY_TASK_STEP"] = "2";
  s = share_from_job(vars(v), {});
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 4);
  v["SLURM_ARRAY_TASK_ID"] = "3";
  expect_error_containing([&] { share_from_job(vars(v), {}); }, {"SLURM_ARRAY_TASK_ID=3", "STEP=2"});
  // --array=1,3,7: Slurm says MIN=1 MAX=7 STEP=1 COUNT=3; task 7's place among them is unknown.
  v["SLURM_ARRAY_TASK_ID"] = "7";
  v["SLURM_ARRAY_TASK_MIN"] = "1";
  v["SLURM_ARRAY_TASK_MAX"] = "7";
  v["SLURM_ARRAY_TASK_STEP"] = "1";
  v["SLURM_ARRAY_TASK_COUNT"] = "3";
  expect_error_containing([&] { share_from_job(vars(v), {}); }, {"Slurm array", "do not number the 3 tasks evenly", "--array=0-2"});
}

}  // namespace
}  // namespace segscale::env
