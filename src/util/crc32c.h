#pragma once
// CRC-32C (Castagnoli), the checksum of the sample store's index. Uses the SSE4.2 crc32 instruction when
// the CPU has it (checked at run time), a table otherwise; both give the same value. No Debian package
// ships a C++ CRC-32C (Abseil's arrived after bookworm).
#include <cstddef>
#include <cstdint>

namespace segscale {

// CRC-32C of `n` bytes, continuing from `crc` (0 to start).
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0);

}  // namespace segscale
