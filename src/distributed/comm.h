#pragma once
// Data-parallel communication over c10d: a TCPStore rendezvous and a Gloo (CPU) or NCCL (CUDA) process group,
// plus gradient averaging in flattened buckets launched from autograd hooks, so communication overlaps the
// rest of the backward pass. c10d::Reducer (an internal API) is not used.
#include <chrono>
#include <memory>
#include <vector>

#include "env/world.h"
#include "model/torch_compat.h"

namespace segscale::distributed {

using env::World;

class Comm {
 public:
  // Joins the group: rank 0 listens on master_port, the others connect; under torchrun
  // (world.agent_store) every rank connects to the agent's store there, its keys under
  // "segscale/<run id>/attempt_<restart count>". Throws Error with a clear message for a port in use, an
  // unreachable master or store, or peers that do not arrive within `timeout`.
  Comm(const World& world, const std::string& backend, std::chrono::seconds timeout);
  ~Comm();
  int rank() const { return world_.rank; }
  int size() const { return world_.size; }
  const std::string& backend() const { return backend_; }

  void broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  void allreduce_sum(torch::Tensor& t);  // in place
  void barrier();
  // Starts an asynchronous sum-allreduce of `t`; wait() on the handle throws Error on failure or timeout.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };
  std::unique_ptr<Pending> allreduce_sum_async(torch::Tensor& t);

 private:
  struct Group;
  World world_;
  std::string backend_;
  std::chrono::seconds timeout_;
  std::unique_ptr<Group> group_;
};

// Averages gradients across ranks. Parameters are grouped (in reverse registration order, the order backward
// produces them) into buckets of about `bucket_bytes`; when a bucket's last gradient arrives its allreduce starts
// asynchronously. finish() waits for all, and writes the averages into each parameter's .grad.
class GradSync {
 public:
  GradSync(Comm& comm, std::vector<torch::Tensor> params, std::size_t bucket_bytes = 25u << 20);
  ~GradSync();
  // Call before backward().
  void begin();
  // Call after backward(); returns the seconds spent waiting for communication.
  double finish();

 private:
  struct Bucket;
  Comm& comm_;
  std::vector<torch::Tensor> params_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<std::pair<std::size_t, std::int64_t>> slot_;  // per param: bucket, offset
  std::vector<unsigned> hooks_;
};

}  // namespace segscale::distributed
