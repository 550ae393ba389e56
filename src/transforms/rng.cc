#include "transforms/rng.h"

#include "util/error.h"

namespace segscale::transforms {
namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t stable_hash(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

double legacy_rand(std::mt19937& g) {
  const std::uint32_t a = static_cast<std::uint32_t>(g()) >> 5, b = static_cast<std::uint32_t>(g()) >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

std::int64_t legacy_randint(std::mt19937& g, std::int64_t lo, std::int64_t hi) {
  if (hi <= lo) throw Error("randint: empty range");
  const std::uint64_t r = static_cast<std::uint64_t>(hi - lo - 1);
  if (r == 0) return lo;
  if (r > 0xffffffffULL) throw Error("randint: ranges past 2^32 are not supported");
  std::uint32_t mask = static_cast<std::uint32_t>(r);
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  std::uint32_t v;
  do {
    v = static_cast<std::uint32_t>(g()) & mask;
  } while (v > r);
  return lo + static_cast<std::int64_t>(v);
}

MonaiRng::MonaiRng(std::uint64_t seed, int random_transforms) {
  std::mt19937 compose(static_cast<std::uint32_t>(seed & 0xffffffffULL));
  for (int i = 0; i < random_transforms; ++i) {
    const std::uint32_t child = static_cast<std::uint32_t>(compose());
    child_seeds_.push_back(child);
    streams_.emplace_back(child);
    streams_.emplace_back(child);
  }
}

std::mt19937& MonaiRng::stream(int slot, Stream s) {
  const std::size_t i = static_cast<std::size_t>(slot) * 2 + static_cast<std::size_t>(s);
  if (i >= streams_.size()) throw Error("MonaiRng: no such random transform slot");
  return streams_[i];
}

double MonaiRng::rand(int slot, Stream s) { return legacy_rand(stream(slot, s)); }

std::int64_t MonaiRng::randint(int slot, Stream s, std::int64_t lo, std::int64_t hi) { return legacy_randint(stream(slot, s), lo, hi); }

SampleRng::SampleRng(std::uint64_t seed, const std::string& case_key, std::uint64_t copy_index)
    : base_(splitmix64(splitmix64(splitmix64(seed) ^ stable_hash(case_key)) ^ copy_index)) {}

std::uint64_t SampleRng::next(int slot, Stream s) {
  const std::size_t i = static_cast<std::size_t>(slot) * 2 + static_cast<std::size_t>(s);
  if (counters_.size() <= i) counters_.resize(i + 1, 0);
  const std::uint64_t stream_key = splitmix64(base_ ^ (static_cast<std::uint64_t>(i) + 1) * 0xd1b54a32d192ed03ULL);
  return splitmix64(stream_key + counters_[i]++ * 0x9e3779b97f4a7c15ULL);
}

double SampleRng::rand(int slot, Stream s) { return static_cast<double>(next(slot, s) >> 11) * 0x1.0p-53; }

std::int64_t SampleRng::randint(int slot, Stream s, std::int64_t lo, std::int64_t hi) {
  if (hi <= lo) throw Error("randint: empty range");
  const std::uint64_t range = static_cast<std::uint64_t>(hi - lo);
  if (range == 1) return lo;
  // Lemire's unbiased bounded integer via rejection on the low product.
  for (;;) {
    const std::uint64_t x = next(slot, s);
    const __uint128_t m = static_cast<__uint128_t>(x) * range;
    const std::uint64_t low = static_cast<std::uint64_t>(m);
    if (low >= (0 - range) % range) return lo + static_cast<std::int64_t>(m >> 64);
  }
}

}  // namespace segscale::transforms
