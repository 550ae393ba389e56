#include "util/stop_signal.h"

#include <signal.h>

#include <atomic>

namespace segscale {
namespace {

std::atomic<int> g_stop{0};
struct sigaction g_previous[3];
constexpr int kSignals[3] = {SIGTERM, SIGINT, SIGUSR1};

// The first signal asks politely; a second one (an impatient Ctrl-C) ends the process as usual.
void on_stop(int s) {
  if (g_stop.exchange(s) != 0) {
    ::signal(s, SIG_DFL);
    ::raise(s);
  }
}

}  // namespace

StopSignalScope::StopSignalScope() {
  g_stop = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_previous[i]);
}

StopSignalScope::~StopSignalScope() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
}

int stop_requested() { return g_stop.load(); }

}  // namespace segscale
