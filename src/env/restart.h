#pragma once
// What a worker group that torchrun restarted does with the run its earlier attempt left (torchrun
// --max-restarts N: when a worker fails, the launcher stops the others and starts the whole group again, with
// TORCHELASTIC_RESTART_COUNT one higher and the same command line). As --auto-resume, but only with files this
// job wrote: a run folder's files count as the job's own when written after the launcher (this process's
// parent) started, so a restart never resumes or deletes a run that was there before the job. libtorch-free.
#include <filesystem>
#include <optional>
#include <string>

#include "env/world.h"

namespace segscale::env {

struct RestartPlan {
  bool resume = false;     // continue from the checkpoint an earlier attempt saved
  bool overwrite = false;  // the earlier attempt failed before its first checkpoint: start afresh over its files
  std::string note;        // one line for the log; empty when the plan changes nothing
};

// For world.restart_count > 0 (else an empty plan): `checkpoint` is the run's checkpoint.pt, `run_dir` its
// run folder (both local; for a remote run folder pass remote = true: resume from whatever checkpoint it has,
// as --auto-resume). `launcher_started`: seconds since the Unix epoch when the launcher started (nullopt: not
// known, then files count as the job's own only when remote). Files older than that get the usual checks of
// the command line. Reads file times only; throws nothing.
RestartPlan plan_restart(const World& world, const std::filesystem::path& checkpoint, const std::filesystem::path& run_dir, bool remote,
                         std::optional<double> launcher_started);

// When the parent process (the launcher) started, in seconds since the Unix epoch (from /proc, to a clock tick:
// 10 ms, rounded down), or nullopt when /proc cannot tell.
std::optional<double> parent_start_time();

}  // namespace segscale::env
