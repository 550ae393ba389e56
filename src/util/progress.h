#pragma once
// Progress reporting for long loops: a redrawn bar on a terminal, plain periodic lines otherwise.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace segscale {

class Progress {
 public:
  // `label` names the work ("synth"), `total` the number of items, `unit` their name ("cases").
  // Writes to `out` (stderr by default); quiet=true prints only the final summary line.
  Progress(std::string label, std::uint64_t total, std::string unit, bool quiet = false,
           std::FILE* out = stderr);

  // Marks `n` more items done and adds `bytes` to the byte counter. Thread-safe.
  void advance(std::uint64_t n = 1, std::uint64_t bytes = 0);

  // Text shown after the counters, e.g. "loss 0.412". Thread-safe.
  void set_status(std::string status);

  // Prints the final line with totals, rate and elapsed time. Idempotent.
  void finish();

  double elapsed_seconds() const;

 private:
  void draw(bool final_line);

  std::string label_, unit_, status_;
  std::uint64_t total_, done_ = 0, bytes_ = 0;
  bool quiet_, tty_, finished_ = false;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mu_;
};

}  // namespace segscale
