#include "util/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace segscale {
namespace {

std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}

std::uint32_t crc_table(const std::uint8_t* p, std::size_t n, std::uint32_t c) {
  static const auto kTable = make_table();
  for (std::size_t i = 0; i < n; ++i) c = kTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c;
}

// The state after more bytes is linear in the state before: advancing state s over n zero bytes multiplies it
// by x^(8n) modulo the polynomial (reflected bit order). That lets three independent streams run at once.
std::uint32_t multiply_mod_p(std::uint32_t a, std::uint32_t b) {
  std::uint32_t product = 0;
  for (std::uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1) ? (b >> 1) ^ 0x82f63b78u : b >> 1;
  }
  return product;
}

// x^(8n) mod P: the operator that advances a state over n zero bytes.
std::uint32_t zeros_operator(std::uint64_t n) {
  std::uint32_t result = 1u << 31, square = 1u << 30;  // x^0, x^1
  for (std::uint64_t bits = 8 * n; bits != 0; bits >>= 1) {
    if (bits & 1) result = multiply_mod_p(square, result);
    square = multiply_mod_p(square, square);
  }
  return result;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint64_t crc_hw_words(std::uint64_t c, const std::uint8_t* p, std::size_t words) {
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t v;
    std::memcpy(&v, p + 8 * i, 8);
    c = _mm_crc32_u64(c, v);
  }
  return c;
}

// The crc32 instruction has a latency of three cycles and a throughput of one: three streams over
// consecutive blocks keep it busy, then their states are joined with zeros_operator.
__attribute__((target("sse4.2"))) std::uint32_t crc_hw(const std::uint8_t* p, std::size_t n, std::uint32_t c) {
  constexpr std::size_t kBlock = 8192;  // bytes per stream and round
  static const std::uint32_t kShift = zeros_operator(kBlock);
  std::uint64_t c64 = c;
  while (n >= 3 * kBlock) {
    std::uint64_t a = c64, b = 0, d = 0;
    for (std::size_t i = 0; i < kBlock; i += 8) {
      std::uint64_t va, vb, vd;
      std::memcpy(&va, p + i, 8);
      std::memcpy(&vb, p + kBlock + i, 8);
      std::memcpy(&vd, p + 2 * kBlock + i, 8);
      a = _mm_crc32_u64(a, va);
      b = _mm_crc32_u64(b, vb);
      d = _mm_crc32_u64(d, vd);
    }
    const std::uint32_t ab = multiply_mod_p(kShift, static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b);
    c64 = multiply_mod_p(kShift, ab) ^ static_cast<std::uint32_t>(d);
    p += 3 * kBlock;
    n -= 3 * kBlock;
  }
  c64 = crc_hw_words(c64, p, n / 8);
  p += n - n % 8;
  n %= 8;
  std::uint32_t c32 = static_cast<std::uint32_t>(c64);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::uint32_t c = ~crc;
#if defined(__x86_64__)
  static const bool kHw = __builtin_cpu_supports("sse4.2");
  c = kHw ? crc_hw(p, n, c) : crc_table(p, n, c);
#else
  c = crc_table(p, n, c);
#endif
  return ~c;
}

}  // namespace segscale
