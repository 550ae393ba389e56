// segscale launch: torchrun-compatible local worker launcher (see src/distributed/launch.h).
#include <cstdlib>

#include "cli/commands.h"
#include "distributed/launch.h"

namespace segscale::cli {

void add_launch_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("launch", "Start data-parallel workers like torchrun: segscale launch --nproc-per-node N -- segscale train ...");
  auto o = std::make_shared<distributed::LaunchOptions>();
  cmd->add_option("--nproc-per-node", o->nproc_per_node, "Workers on this node")->capture_default_str();
  cmd->add_option("--nnodes", o->nnodes, "Nodes in the job")->capture_default_str();
  cmd->add_option("--node-rank", o->node_rank, "This node's index")->capture_default_str();
  cmd->add_option("--master-addr", o->master_addr, "Host of rank 0")->capture_default_str();
  cmd->add_option("--master-port", o->master_port, "Rendezvous port on the master")->capture_default_str();
  cmd->add_option("--grace", o->grace_seconds, "Seconds between SIGTERM and SIGKILL when stopping workers after one failed")->capture_default_str();
  cmd->add_option("--stop-grace", o->stop_grace_seconds,
                  "Seconds the workers get to checkpoint after a forwarded SIGTERM/SIGINT/SIGUSR1 before SIGKILL")->capture_default_str();
  cmd->add_option("command", o->command, "Worker command (after --)")->required();
  cmd->callback([o] {
    int rc = distributed::run_launch(*o);
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace segscale::cli
