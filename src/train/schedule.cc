#include "train/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "util/error.h"

namespace segscale::train {

double scheduled_lr(const Schedule& s, double base_lr, std::int64_t epoch) {
  const std::int64_t w = s.warmup_epochs;
  if (w > 0 && epoch < w) return base_lr * static_cast<double>(epoch) / static_cast<double>(w);
  const double e = static_cast<double>(epoch - w);
  const double n = static_cast<double>(std::max<std::int64_t>(1, s.epochs - w));
  if (s.kind == "cosine") return s.min_lr + 0.5 * (base_lr - s.min_lr) * (1.0 + std::cos(std::numbers::pi * e / n));
  if (s.kind == "poly") return base_lr * std::pow(std::max(0.0, 1.0 - std::min(e, n) / n), s.poly_power);
  return base_lr;
}

void check_schedule(const Schedule& s) {
  if (s.kind != "none" && s.kind != "cosine" && s.kind != "poly")
    throw UsageError(fmt::format("--schedule {} is not known: it must be none, cosine or poly", s.kind));
  if (s.warmup_epochs < 0) throw UsageError(fmt::format("--warmup-epochs {} is out of range: it must be 0 or more", s.warmup_epochs));
  if (s.warmup_epochs > 0 && s.warmup_epochs >= s.epochs)
    throw UsageError(fmt::format("--warmup-epochs {} is out of range: it must be below the run's {} epochs", s.warmup_epochs, s.epochs));
  if (!(s.min_lr >= 0) || !std::isfinite(s.min_lr)) throw UsageError(fmt::format("--min-lr {} is out of range: it must be 0 or more", s.min_lr));
}

}  // namespace segscale::train
