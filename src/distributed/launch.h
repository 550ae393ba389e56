#pragma once
// segscale launch: starts the local workers of a data-parallel job the way torchrun does (RANK, LOCAL_RANK,
// WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, GROUP_RANK in each worker's environment), prefixes
// their output with "[rank R]", forwards SIGINT/SIGTERM, and when one worker fails stops the others and
// reports that worker. libtorch-free (fork/exec).
#include <string>
#include <vector>

namespace segscale::distributed {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double grace_seconds = 5;           // between SIGTERM and SIGKILL when stopping workers after a failure
  double stop_grace_seconds = 110;    // after a forwarded SIGTERM/SIGINT/SIGUSR1 (SageMaker allows 120 s)
  std::vector<std::string> command;  // argv of each worker; "segscale" means this very binary
};

// Runs the workers to completion. Returns 0 when all succeed; kExitStopped when they stopped on request
// (a signal forwarded to them, or one a worker received itself) and saved a checkpoint; otherwise the failing
// worker's exit code (at least 1), after printing which rank failed and why. Throws UsageError for bad options.
int run_launch(const LaunchOptions& options);

}  // namespace segscale::distributed
