#include "env/restart.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace segscale::env {
namespace fs = std::filesystem;

namespace {

// Modification time in seconds since the epoch, or nullopt when the file is absent.
std::optional<double> mtime(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  return static_cast<double>(st.st_mtim.tv_sec) + 1e-9 * static_cast<double>(st.st_mtim.tv_nsec);
}

}  // namespace

std::optional<double> parent_start_time() {
  std::ifstream stat_file(fmt::format("/proc/{}/stat", ::getppid()));
  std::string line;
  if (!std::getline(stat_file, line)) return std::nullopt;
  // Field 2 (the command name) may hold spaces and parentheses: count fields after its closing ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 > line.size()) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i < 22) continue;
    // Field 22: clock ticks since boot when the process started. Now minus the time since then, in wall time.
    const long ticks = ::sysconf(_SC_CLK_TCK);
    timespec boot{}, wall{};
    if (ticks <= 0 || ::clock_gettime(CLOCK_BOOTTIME, &boot) != 0 || ::clock_gettime(CLOCK_REALTIME, &wall) != 0) return std::nullopt;
    const double since_boot = std::stod(field) / static_cast<double>(ticks);
    return (wall.tv_sec + 1e-9 * wall.tv_nsec) - (boot.tv_sec + 1e-9 * boot.tv_nsec - since_boot);
  }
  return std::nullopt;
}

RestartPlan plan_restart(const World& world, const fs::path& checkpoint, const fs::path& run_dir, bool remote,
                         std::optional<double> launcher_started) {
  RestartPlan plan;
  if (world.restart_count <= 0) return plan;
  const std::string who = fmt::format("torchrun restart {} (run id {})", world.restart_count, world.run_id.empty() ? "?" : world.run_id);
  if (remote) {
    plan.resume = true;
    plan.note = who + ": resuming from the run's checkpoint when it has one";
    return plan;
  }
  // Written by this job: at or after the launcher's start (known to a clock tick, rounded down).
  auto ours = [&](const fs::path& p) {
    auto t = mtime(p);
    return t && launcher_started && *t >= *launcher_started;
  };
  if (ours(checkpoint)) {
    plan.resume = true;
    plan.note = fmt::format("{}: resuming from {}", who, checkpoint.string());
    return plan;
  }
  if (mtime(checkpoint)) {  // a checkpoint from before this job: the command line decides, as on the first attempt
    plan.note = fmt::format("{}: {} predates this job; not resumed", who, checkpoint.string());
    return plan;
  }
  bool any = false, all_ours = true;
  for (const char* f : {"config.json", "metrics.jsonl", "model.pt", "last.pt"})
    if (mtime(run_dir / f)) {
      any = true;
      all_ours = all_ours && ours(run_dir / f);
    }
  if (any && all_ours) {
    plan.overwrite = true;
    plan.note = fmt::format("{}: the earlier attempt saved no checkpoint; starting afresh in {}", who, run_dir.string());
  } else if (!any) {
    plan.note = who + ": no checkpoint yet; starting afresh";
  }
  return plan;
}

}  // namespace segscale::env
