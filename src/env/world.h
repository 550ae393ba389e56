#pragma once
// Who this process is in a data-parallel job, read from whichever launcher started it. libtorch-free.
#include <optional>
#include <string>

#include "env/job_environment.h"

namespace segscale::env {

struct World {
  int rank = 0, local_rank = 0, size = 1, local_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single process";
  // torchrun (torch.distributed.run) says so in its workers' environment: TORCHELASTIC_USE_AGENT_STORE=True
  // means its agent already serves the rendezvous TCPStore on master_addr:master_port, so every rank joins it as
  // a client; TORCHELASTIC_RESTART_COUNT counts the restarts of the worker group (0 on the first attempt) and
  // TORCHELASTIC_RUN_ID names the job (--rdzv-id; "none" by default).
  bool agent_store = false;
  int restart_count = 0;
  std::string run_id;
};

// In this order: torchrun / segscale launch (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT; torchrun's TORCHELASTIC_USE_AGENT_STORE, TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_RUN_ID);
// Open MPI (OMPI_COMM_WORLD_RANK/LOCAL_RANK/SIZE/LOCAL_SIZE, master from MASTER_ADDR/PORT);
// Slurm (an srun task: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_STEP_TASKS_PER_NODE...; see
// env/slurm.h's slurm_world); SageMaker (SM_HOSTS/SM_CURRENT_HOST or a Training job's resourceconfig.json;
// SM_NUM_GPUS processes per host, LOCAL_RANK; master the first host). nullopt when none applies. Throws
// UsageError naming the variable or file for inconsistent values.
std::optional<World> world_from_job(const JobEnvironment& env);

// The first host name of a Slurm node list: "gpu[03-05,07],cpu1" -> "gpu03".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace segscale::env
