#pragma once
#include "util/error.h"

// A polite stop: schedulers ask a job to end with a signal and a grace period before SIGKILL (SageMaker's
// stop and managed-spot reclaim: SIGTERM, 120 s; Kubernetes eviction: SIGTERM, terminationGracePeriodSeconds;
// Slurm: --signal=TERM@120 or USR1). Long-running work polls stop_requested() at safe points (a training step
// boundary), saves its state, and exits with kExitStopped.
namespace segscale {

// Exit status of a run that stopped on request after saving a checkpoint (EX_TEMPFAIL: "try again"):
// distinct from failure (1) and bad usage (2); rerunning the same command resumes.
inline constexpr int kExitStopped = 75;

// While alive, the first SIGTERM, SIGINT or SIGUSR1 sets a flag instead of ending the process (a second one
// ends it as usual); the previous handlers come back on destruction. One instance at a time.
class StopSignalScope {
 public:
  StopSignalScope();
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;
};

// The signal number received since the scope began, or 0.
int stop_requested();

// Thrown (after the state is saved) by work that stopped on request; the CLI prints it and exits kExitStopped.
class Stopped : public Error {
 public:
  using Error::Error;
};

}  // namespace segscale
