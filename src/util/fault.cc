#include "util/fault.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include <unistd.h>

#include "util/stop_signal.h"

namespace segscale {
namespace {

struct Plan {
  std::string name;
  long at = 0;
  long hits = 0;
  bool active = false;
};

Plan& plan() {
  static Plan p = [] {
    Plan q;
    if (const char* v = std::getenv("SEGSCALE_FAULT")) {
      std::string s(v);
      auto colon = s.rfind(':');
      q.name = s.substr(0, colon);
      q.at = colon == std::string::npos ? 1 : std::atol(s.c_str() + colon + 1);
      q.active = !q.name.empty();
      // SEGSCALE_FAULT_RANK=R limits the fault to the worker whose RANK is R (data-parallel tests).
      if (const char* r = std::getenv("SEGSCALE_FAULT_RANK")) {
        const char* mine = std::getenv("RANK");
        q.active = q.active && mine && std::string(mine) == r;
      }
    }
    return q;
  }();
  return p;
}

}  // namespace

void fault_point(const char* name) {
  Plan& p = plan();
  if (!p.active || p.name != name) return;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (++p.hits != p.at) return;
  if (std::string(name).find("until_stop") != std::string::npos) {
    while (!stop_requested()) ::usleep(10000);  // polled: a signal between a check and pause() would be lost
    return;
  }
  if (std::string(name).find("hang") != std::string::npos)
    for (;;) ::pause();  // a "hang" point: stop making progress, stay alive
  ::kill(::getpid(), SIGKILL);
}

bool fault_fail(const char* name) {
  Plan& p = plan();
  if (!p.active || p.name != name) return false;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  return ++p.hits >= p.at;
}

}  // namespace segscale
