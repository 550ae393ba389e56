#pragma once
// Process-wide allocator tuning for voxel workloads, and how much host memory is available.
#include <cstdint>
#include <optional>

namespace segscale {

// Keeps freed large buffers (whole volumes, 10-200 MB) in the heap for reuse instead of returning them to
// the OS: glibc mmaps every block above 32 MB afresh, and the kernel's page faults and zeroing then cost
// as much as the transforms. Call once at program start.
void tune_allocator_for_volumes();

// MemAvailable from /proc/meminfo in bytes (what the kernel can hand out without swapping); nullopt where
// that file is missing or unreadable.
std::optional<std::uint64_t> available_memory_bytes();

}  // namespace segscale
