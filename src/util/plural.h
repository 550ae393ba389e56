#pragma once
// "1 step", "2 steps", "0 cases": counts in log lines and summaries.
#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace segscale {

// `n` and the noun, with "s" appended unless n == 1 (or `plural_form` when the plural is irregular).
inline std::string plural(std::int64_t n, std::string_view noun, std::string_view plural_form = {}) {
  if (n == 1) return fmt::format("1 {}", noun);
  return plural_form.empty() ? fmt::format("{} {}s", n, noun) : fmt::format("{} {}", n, plural_form);
}

}  // namespace segscale
