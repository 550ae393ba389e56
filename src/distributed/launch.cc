#include "distributed/launch.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>

#include "util/error.h"
#include "util/stop_signal.h"

namespace segscale::distributed {
namespace {

std::atomic<int> g_signal{0};
void on_signal(int s) { g_signal = s; }

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  int out = -1, err = -1;
  std::string out_buf, err_buf;
  std::deque<std::string> last_err;  // tail of its stderr, for the failure report
  bool running = true;
  int status = 0;
};

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "segscale";
  buf[n] = 0;
  return buf;
}

void emit(Worker& w, std::string& buf, bool is_err, bool flush_all) {
  std::size_t nl;
  while ((nl = buf.find('\n')) != std::string::npos || (flush_all && !buf.empty())) {
    std::string line = nl == std::string::npos ? buf : buf.substr(0, nl);
    buf.erase(0, nl == std::string::npos ? buf.size() : nl + 1);
    // Progress bars redraw with \r: keep the last redraw only.
    if (auto cr = line.rfind('\r'); cr != std::string::npos) line = line.substr(cr + 1);
    fmt::print(is_err ? stderr : stdout, "[rank {}] {}\n", w.rank, line);
    if (is_err) {
      w.last_err.push_back(line);
      if (w.last_err.size() > 5) w.last_err.pop_front();
    }
  }
  std::fflush(is_err ? stderr : stdout);
}

bool drain(Worker& w, int fd, std::string& buf, bool is_err) {
  char chunk[8192];
  ssize_t n = ::read(fd, chunk, sizeof chunk);
  if (n > 0) {
    buf.append(chunk, static_cast<std::size_t>(n));
    emit(w, buf, is_err, false);
    return true;
  }
  return false;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exit code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "unknown status";
}

}  // namespace

int run_launch(const LaunchOptions& o) {
  if (o.nproc_per_node < 1 || o.nnodes < 1) throw UsageError("--nproc-per-node and --nnodes must be at least 1");
  if (o.node_rank < 0 || o.node_rank >= o.nnodes) throw UsageError(fmt::format("--node-rank {} is outside {} nodes", o.node_rank, o.nnodes));
  if (o.master_port < 1 || o.master_port > 65535) throw UsageError("--master-port must be a TCP port");
  if (o.command.empty()) throw UsageError("nothing to launch: give the worker command after --, e.g. -- segscale train ...");
  const int world = o.nnodes * o.nproc_per_node;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<Worker> workers(static_cast<std::size_t>(o.nproc_per_node));
  for (int l = 0; l < o.nproc_per_node; ++l) {
    Worker& w = workers[static_cast<std::size_t>(l)];
    w.rank = o.node_rank * o.nproc_per_node + l;
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw Error(std::string("launch: pipe failed: ") + std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0) throw Error(std::string("launch: fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::setenv("RANK", std::to_string(w.rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(l).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node).c_str(), 1);
      ::setenv("GROUP_RANK", std::to_string(o.node_rank).c_str(), 1);
      ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(o.master_port).c_str(), 1);
      std::vector<std::string> args = o.command;
      if (args[0] == "segscale") args[0] = self_exe();
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "cannot run %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    w.pid = pid;
    w.out = out[0];
    w.err = err[0];
  }

  int failed = -1;  // index of the first worker that failed
  bool stopping = false;
  double grace = o.grace_seconds;
  auto stop_start = std::chrono::steady_clock::now();
  auto stop_all = [&](int sig) {
    for (auto& w : workers)
      if (w.running) ::kill(w.pid, sig);
  };
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<std::pair<Worker*, bool>> who;
    for (auto& w : workers) {
      if (w.out >= 0) fds.push_back({w.out, POLLIN, 0}), who.push_back({&w, false});
      if (w.err >= 0) fds.push_back({w.err, POLLIN, 0}), who.push_back({&w, true});
    }
    if (!fds.empty()) ::poll(fds.data(), fds.size(), 100);
    else ::usleep(100000);
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Worker& w = *who[i].first;
      const bool is_err = who[i].second;
      if (!drain(w, fds[i].fd, is_err ? w.err_buf : w.out_buf, is_err)) {
        emit(w, is_err ? w.err_buf : w.out_buf, is_err, true);
        ::close(fds[i].fd);
        (is_err ? w.err : w.out) = -1;
      }
    }
    for (std::size_t k = 0; k < workers.size(); ++k) {
      Worker& w = workers[k];
      if (!w.running) continue;
      int status;
      if (::waitpid(w.pid, &status, WNOHANG) == w.pid) {
        w.running = false;
        w.status = status;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        // A worker that stopped on request saved its state; the others stop at the same step by themselves.
        const bool stopped = WIFEXITED(status) && WEXITSTATUS(status) == kExitStopped;
        if (stopped && !stopping) {
          stopping = true;
          grace = o.stop_grace_seconds;
          stop_start = std::chrono::steady_clock::now();
        }
        if (!ok && !stopped && failed < 0 && !stopping) {
          failed = static_cast<int>(k);
          stopping = true;
          stop_start = std::chrono::steady_clock::now();
          fmt::print(stderr, "segscale launch: rank {} failed ({}); stopping the other ranks\n", w.rank, describe(status));
          stop_all(SIGTERM);
        }
      }
    }
    if (int s = g_signal.exchange(0)) {
      fmt::print(stderr, "segscale launch: got signal {}, forwarding to the workers\n", s);
      stop_all(s);
      if (!stopping) {
        stopping = true;
        grace = o.stop_grace_seconds;  // time for the workers to checkpoint
        stop_start = std::chrono::steady_clock::now();
      }
    }
    if (stopping && std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_start).count() > grace) stop_all(SIGKILL);
    bool any = false;
    for (auto& w : workers) any |= w.running || w.out >= 0 || w.err >= 0;
    if (!any) break;
  }
  if (failed >= 0) {
    const Worker& w = workers[static_cast<std::size_t>(failed)];
    std::string last = w.last_err.empty() ? "(no error output)" : w.last_err.back();
    fmt::print(stderr, "segscale launch: error: rank {} failed ({}): {}\n", w.rank, describe(w.status), last);
    return WIFEXITED(w.status) && WEXITSTATUS(w.status) != 0 ? WEXITSTATUS(w.status) : 1;
  }
  bool any_stopped = false;
  for (const auto& w : workers) {
    if (WIFEXITED(w.status) && WEXITSTATUS(w.status) == kExitStopped) any_stopped = true;
    else if (!(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0)) return 1;  // killed: interrupted without saving
  }
  return any_stopped ? kExitStopped : 0;
}

}  // namespace segscale::distributed
