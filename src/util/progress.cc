#include "util/progress.h"

#include <fmt/format.h>
#include <unistd.h>

namespace segscale {

Progress::Progress(std::string label, std::uint64_t total, std::string unit, bool quiet, std::FILE* out)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), quiet_(quiet),
      tty_(isatty(fileno(out)) != 0), out_(out), start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(std::uint64_t n, std::uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  bytes_ += bytes;
  if (quiet_) return;
  auto now = std::chrono::steady_clock::now();
  // Terminals get ~10 redraws a second; logs get a line every 10 s so they stay readable.
  auto period = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000);
  if (now - last_draw_ >= period) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::draw(bool final_line) {
  double secs = elapsed_seconds();
  double rate = secs > 0 ? static_cast<double>(done_) / secs : 0.0;
  std::string bytes_part =
      bytes_ > 0 ? fmt::format(", {:.1f} MB/s", secs > 0 ? static_cast<double>(bytes_) / 1e6 / secs : 0.0) : "";
  if (final_line) {
    fmt::print(out_, "{}{}: {} {} in {:.2f} s ({:.2f} {}/s{})\n", tty_ ? "\r\033[K" : "", label_, done_, unit_,
               secs, rate, unit_, bytes_part);
  } else {
    double eta = rate > 0 && total_ > done_ ? static_cast<double>(total_ - done_) / rate : 0.0;
    int width = 30;
    int filled = total_ ? static_cast<int>(width * static_cast<double>(done_) / static_cast<double>(total_)) : 0;
    std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
    fmt::print(out_, "{}{} [{}] {}/{} {} ({:.2f} {}/s{}, ETA {:.0f} s){}{}", tty_ ? "\r\033[K" : "", label_, bar,
               done_, total_, unit_, rate, unit_, bytes_part, eta, status_.empty() ? "" : " " + status_, tty_ ? "" : "\n");
  }
  std::fflush(out_);
}

void Progress::set_status(std::string status) {
  std::lock_guard<std::mutex> lock(mu_);
  status_ = std::move(status);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  draw(true);
}

}  // namespace segscale
