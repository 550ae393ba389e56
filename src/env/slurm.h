#pragma once
// Who this process is in a Slurm job, from the variables Slurm 22.05 sets (checked against a real slurmd:
// tests/cli/test_slurm.py). libtorch-free.
#include <optional>
#include <string>
#include <vector>

#include "env/job_environment.h"
#include "env/world.h"

namespace segscale::env {

// Expands a per-node task count list as Slurm writes SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE and
// SLURM_NTASKS_PER_NODE: "2(x3),1" -> {2, 2, 2, 1}; "4" -> {4}. Throws UsageError
// "<what>='<text>' is not a Slurm task count list (like 2(x3),1)".
std::vector<int> expand_slurm_tasks_per_node(const std::string& text, const std::string& what);

// True for a job's batch script (SLURM_JOB_ID set, SLURM_STEP_ID not): Slurm gives it SLURM_PROCID=0,
// SLURM_LOCALID=0 and the job's SLURM_NTASKS, but it is one process, not one of the tasks `srun` starts.
bool is_slurm_batch_script(const JobEnvironment& env);

// The world of a task started by `srun` (SLURM_PROCID and SLURM_NTASKS set), nullopt without them:
// rank SLURM_PROCID of SLURM_NTASKS; local rank SLURM_LOCALID (default 0); local size this node's entry
// (SLURM_NODEID, default 0) in SLURM_STEP_TASKS_PER_NODE, else SLURM_TASKS_PER_NODE, else SLURM_NTASKS_PER_NODE
// (the request, the same on every node), else 1; master MASTER_ADDR, else the first host of
// SLURM_STEP_NODELIST, else of SLURM_JOB_NODELIST (where task 0 runs); port MASTER_PORT, else
// 15000 + SLURM_JOB_ID % 10000 (so two jobs sharing a node do not both take 29500; Lightning's rule), else 29500.
// Throws UsageError naming the variable for a malformed value or a node missing from a list, and for the batch
// script of a job of several tasks (training there would wait for ranks no one starts: it says to use srun).
// Range checks (rank < size, local rank < local size, port) are world_from_job's.
std::optional<World> slurm_world(const JobEnvironment& env);

}  // namespace segscale::env
