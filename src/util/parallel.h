#pragma once
// A minimal parallel-for over an index range. No global pool: each call starts and joins its threads,
// which costs microseconds against the milliseconds-to-seconds of the work items it is used for.
#include <cstddef>
#include <functional>

namespace segscale {

// Number of threads to use when the user asked for `requested` (0 means all cores).
int resolve_threads(int requested);

// Calls fn(i) for every i in [0, n) on up to `threads` threads; items are handed out dynamically, so the
// order of calls is unspecified. If any call throws, the remaining items are skipped and the first
// exception is rethrown here after all threads joined.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& fn);

}  // namespace segscale
