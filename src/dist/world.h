#pragma once
// Who this process is in a data-parallel job, read from whichever launcher started it. libtorch-free.
#include <map>
#include <optional>
#include <string>

namespace segscale::dist {

struct World {
  int rank = 0, local_rank = 0, size = 1, local_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single process";
};

// In this order: torchrun / segscale launch (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT); Open MPI (OMPI_COMM_WORLD_RANK/LOCAL_RANK/SIZE/LOCAL_SIZE, master from MASTER_ADDR/PORT);
// Slurm (SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, SLURM_NTASKS_PER_NODE; master MASTER_ADDR or the first host
// of SLURM_JOB_NODELIST); SageMaker (SM_HOSTS, SM_CURRENT_HOST, SM_NUM_GPUS processes per host, LOCAL_RANK;
// master the first host). nullopt when none is set. Throws UsageError for inconsistent values.
std::optional<World> world_from_environment(const std::map<std::string, std::string>& env);

// The first host name of a Slurm node list: "gpu[03-05,07],cpu1" -> "gpu03".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace segscale::dist
