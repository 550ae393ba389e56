#include "env/slurm.h"

#include <fmt/format.h>

#include <cctype>

#include "util/error.h"

namespace segscale::env {
namespace {

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::vector<int> expand_slurm_tasks_per_node(const std::string& text, const std::string& what) {
  auto bad = [&] { return UsageError(fmt::format("{}='{}' is not a Slurm task count list (like 2(x3),1)", what, text)); };
  std::vector<int> counts;
  std::size_t pos = 0;
  while (true) {
    const std::size_t end = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, end - pos);
    const std::size_t paren = item.find('(');
    const std::string count = item.substr(0, paren);
    int repeat = 1;
    if (paren != std::string::npos) {
      // "(xM)"
      if (item.size() < paren + 4 || item[paren + 1] != 'x' || item.back() != ')') throw bad();
      const std::string times = item.substr(paren + 2, item.size() - paren - 3);
      if (!all_digits(times)) throw bad();
      repeat = std::stoi(times);
      if (repeat < 1 || repeat > 1'000'000) throw bad();
    }
    if (!all_digits(count)) throw bad();
    counts.insert(counts.end(), static_cast<std::size_t>(repeat), std::stoi(count));
    if (end == text.size()) break;
    pos = end + 1;
  }
  return counts;
}

bool is_slurm_batch_script(const JobEnvironment& env) { return env.get("SLURM_JOB_ID") && !env.get("SLURM_STEP_ID"); }

std::optional<World> slurm_world(const JobEnvironment& env) {
  if (!env.get("SLURM_PROCID") || !env.get("SLURM_NTASKS")) return std::nullopt;
  World w;
  w.source = "Slurm";
  w.rank = *env.get_int("SLURM_PROCID");
  w.size = *env.get_int("SLURM_NTASKS");
  if (is_slurm_batch_script(env) && w.size > 1)
    throw UsageError(fmt::format("Slurm: this is the batch script of job {} (SLURM_NTASKS={}, no SLURM_STEP_ID), one process, not its {} tasks: "
                                 "start them with `srun segscale ...` in the script (or submit with -n1 --cpus-per-task=N for one process)",
                                 *env.get("SLURM_JOB_ID"), w.size, w.size));
  w.local_rank = env.get_int("SLURM_LOCALID").value_or(0);
  const int node = env.get_int("SLURM_NODEID").value_or(0);
  for (const char* name : {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE"}) {
    const std::string* text = env.get(name);
    if (!text) continue;
    const std::vector<int> counts = expand_slurm_tasks_per_node(*text, "environment variable " + std::string(name));
    if (std::string(name) == "SLURM_NTASKS_PER_NODE") {  // the request (--ntasks-per-node): one count for every node
      w.local_size = counts[0];
    } else if (node < 0 || node >= static_cast<int>(counts.size())) {
      throw UsageError(fmt::format("Slurm: SLURM_NODEID={} but {}='{}' lists {} node(s)", node, name, *text, counts.size()));
    } else {
      w.local_size = counts[static_cast<std::size_t>(node)];
    }
    break;
  }
  if (auto a = env.get("MASTER_ADDR")) w.master_addr = *a;
  else if (auto s = env.get("SLURM_STEP_NODELIST")) w.master_addr = first_slurm_host(*s);
  else if (auto j = env.get("SLURM_JOB_NODELIST")) w.master_addr = first_slurm_host(*j);
  else if (w.size > 1) throw UsageError("Slurm: MASTER_ADDR is not set and neither is SLURM_STEP_NODELIST or SLURM_JOB_NODELIST (the rank 0 host)");
  if (auto p = env.get_int("MASTER_PORT")) w.master_port = *p;
  else if (auto id = env.get_int("SLURM_JOB_ID")) w.master_port = 15000 + *id % 10000;
  return w;
}

}  // namespace segscale::env
