#include "distributed/comm.h"

#include <fmt/format.h>

#include <mutex>

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef SEGSCALE_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "util/error.h"

namespace segscale::distributed {
namespace {

// libtorch 2.x splits ProcessGroup into a dispatcher and per-device Backends; the collectives segscale uses
// have the same signatures on 1.13's ProcessGroup and 2.x's Backend.
#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;
#else
using GroupBase = c10d::ProcessGroup;
#endif

std::string what_of(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace

struct Comm::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<GroupBase> pg;
};

Comm::Comm(const World& world, const std::string& backend, std::chrono::seconds timeout)
    : world_(world), backend_(backend), timeout_(timeout), group_(std::make_unique<Group>()) {
  if (backend_ == "auto") backend_ = torch::cuda::is_available() ? "nccl" : "gloo";
  const std::string where = fmt::format("rank {} of {} ({}), master {}:{}", world_.rank, world_.size, world_.source, world_.master_addr,
                                        world_.master_port);
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(world_.master_port);
  so.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  if (world_.agent_store) {
    // torchrun's agent serves the store on MASTER_PORT and outlives the worker groups it restarts: every rank is
    // a client, and each attempt keeps its keys apart (as torch 1.13's workers do with "/worker/attempt_N";
    // torch 2.x workers use none and can meet a failed attempt's keys).
    so.isServer = false;
    so.waitWorkers = false;  // the agent's server counts its agents, not us
    const std::string prefix = fmt::format("segscale/{}/attempt_{}", world_.run_id, world_.restart_count);
    try {
      group_->store = c10::make_intrusive<c10d::PrefixStore>(prefix, c10::make_intrusive<c10d::TCPStore>(world_.master_addr, so));
    } catch (const std::exception& e) {
      throw Error(fmt::format("{}: cannot reach torchrun's store (TORCHELASTIC_USE_AGENT_STORE=True) within {} s: {}", where, timeout.count(),
                              what_of(e)));
    }
  } else {
    so.isServer = world_.rank == 0;
    so.numWorkers = world_.size;
    so.waitWorkers = true;
    try {
      group_->store = c10::make_intrusive<c10d::TCPStore>(world_.master_addr, so);
    } catch (const std::exception& e) {
      const std::string msg = what_of(e);
      if (world_.rank == 0 && (msg.find("in use") != std::string::npos || msg.find("bind") != std::string::npos))
        throw Error(fmt::format("{}: cannot listen on port {}: already in use by another program (a launcher that serves its own store "
                                "there says so with TORCHELASTIC_USE_AGENT_STORE=True, as torchrun does; otherwise another job): choose a "
                                "free port with MASTER_PORT or segscale launch --master-port: {}",
                                where, world_.master_port, msg));
      throw Error(fmt::format("{}: rendezvous failed within {} s ({}): {}", where, timeout.count(),
                              world_.rank == 0 ? "not every rank arrived" : "master unreachable or not listening", msg));
    }
  }
  try {
    if (backend_ == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      group_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, world_.rank, world_.size, opts);
    } else if (backend_ == "nccl") {
#ifdef SEGSCALE_WITH_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
      group_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(group_->store, world_.rank, world_.size, opts);
#else
      throw UsageError("backend nccl: this build has no NCCL (build against a CUDA libtorch); use --backend gloo");
#endif
    } else {
      throw UsageError("unknown distributed backend '" + backend_ + "' (auto, gloo, nccl)");
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // A torchrun of another PyTorch than the libtorch linked here serves a store whose protocol differs (2.x
    // servers drop 1.13 clients): say so rather than leave a bare "Connection reset by peer".
    const std::string hint = world_.agent_store ? fmt::format(" (torchrun's store: its PyTorch must match the libtorch segscale was built "
                                                              "with, {}.{})", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR)
                                                : std::string();
    throw Error(fmt::format("{}: cannot create the {} process group: {}{}", where, backend_, what_of(e), hint));
  }
}

Comm::~Comm() = default;

namespace {
class WorkHandle final : public Comm::Pending {
 public:
  WorkHandle(c10::intrusive_ptr<c10d::Work> w, std::string what) : w_(std::move(w)), what_(std::move(what)) {}
  void wait() override {
    try {
      w_->wait();
    } catch (const std::exception& e) {
      throw Error(fmt::format("{} failed (a rank died, hung past the timeout, or lost its connection): {}", what_, what_of(e)));
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> w_;
  std::string what_;
};
}  // namespace

std::unique_ptr<Comm::Pending> Comm::allreduce_sum_async(torch::Tensor& t) {
  std::vector<at::Tensor> v{t};
  try {
    return std::make_unique<WorkHandle>(group_->pg->allreduce(v), fmt::format("allreduce on rank {}", world_.rank));
  } catch (const std::exception& e) {
    throw Error(fmt::format("allreduce on rank {} failed: {}", world_.rank, what_of(e)));
  }
}

void Comm::allreduce_sum(torch::Tensor& t) { allreduce_sum_async(t)->wait(); }

void Comm::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  c10d::BroadcastOptions o;
  o.rootRank = root;
  // One flat buffer: c10d's multi-tensor form means one tensor per local device, not a list of parameters.
  std::vector<torch::Tensor> flat_views;
  for (auto& t : tensors) flat_views.push_back(t.reshape({-1}));
  std::vector<at::Tensor> flat{torch::cat(flat_views)};
  try {
    WorkHandle(group_->pg->broadcast(flat, o), fmt::format("broadcast on rank {}", world_.rank)).wait();
    torch::NoGradGuard g;
    std::int64_t off = 0;
    for (auto& t : tensors) {
      t.copy_(flat[0].narrow(0, off, t.numel()).view(t.sizes()));
      off += t.numel();
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("broadcast on rank {} failed: {}", world_.rank, what_of(e)));
  }
}

void Comm::barrier() {
  torch::Tensor t = torch::zeros({1});
  allreduce_sum(t);
}

struct GradSync::Bucket {
  torch::Tensor flat;
  std::vector<std::size_t> members;
  std::size_t pending = 0;
  std::unique_ptr<Comm::Pending> work;
  std::mutex mu;
};

GradSync::GradSync(Comm& comm, std::vector<torch::Tensor> params, std::size_t bucket_bytes) : comm_(comm), params_(std::move(params)) {
  slot_.resize(params_.size());
  // Reverse order: the last layers' gradients come first in backward.
  std::size_t bytes = 0;
  for (std::size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    if (buckets_.empty() || bytes >= bucket_bytes) {
      buckets_.push_back(std::make_unique<Bucket>());
      bytes = 0;
    }
    Bucket& b = *buckets_.back();
    std::int64_t off = 0;
    for (auto m : b.members) off += params_[m].numel();
    slot_[k] = {buckets_.size() - 1, off};
    b.members.push_back(k);
    bytes += static_cast<std::size_t>(p.numel()) * p.element_size();
  }
  for (auto& b : buckets_) {
    std::int64_t n = 0;
    for (auto m : b->members) n += params_[m].numel();
    b->flat = torch::zeros({n}, params_[b->members[0]].options());
  }
  for (std::size_t k = 0; k < params_.size(); ++k) {
    hooks_.push_back(params_[k].register_hook([this, k](torch::Tensor grad) {
      auto [bi, off] = slot_[k];
      Bucket& b = *buckets_[bi];
      std::lock_guard<std::mutex> lock(b.mu);
      b.flat.narrow(0, off, grad.numel()).copy_(grad.reshape({-1}));
      if (b.pending > 0 && --b.pending == 0) b.work = comm_.allreduce_sum_async(b.flat);  // overlaps the rest of backward
    }));
  }
}

GradSync::~GradSync() {
  for (std::size_t k = 0; k < params_.size(); ++k) params_[k].remove_hook(hooks_[k]);
}

void GradSync::begin() {
  for (auto& b : buckets_) {
    b->pending = b->members.size();
    b->work.reset();
  }
}

double GradSync::finish() {
  auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard g;
  for (auto& b : buckets_) {
    if (!b->work) {  // a parameter got no gradient this step: it contributes zeros
      for (auto m : b->members)
        if (!params_[m].grad().defined()) b->flat.narrow(0, slot_[m].second, params_[m].numel()).zero_();
      b->work = comm_.allreduce_sum_async(b->flat);
    }
    b->work->wait();
    b->flat.div_(comm_.size());
    for (auto m : b->members) {
      auto view = b->flat.narrow(0, slot_[m].second, params_[m].numel()).view(params_[m].sizes());
      if (params_[m].grad().defined()) params_[m].mutable_grad().copy_(view);
      else params_[m].mutable_grad() = view.clone();
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace segscale::distributed
