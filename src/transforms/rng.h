#pragma once
// Random draws for the random stage. Each random transform in a pipeline owns a slot (its index among the
// random transforms) with two streams: kOuter (the dict transform's) and kInner (its inner array
// transform's), because MONAI 1.4.0's scale/shift draw from both (spec section 8).
//
// Two implementations of one interface:
//  - SampleRng: counter-based; the draws of a sample are a pure function of (seed, case key, copy index,
//    slot, stream, draw number), so a sample comes out identical on any thread, worker, share or machine.
//  - MonaiRng: MONAI 1.4.0's exact draws for one sequential run: Compose seeded with the seed hands each
//    random transform a child seed (one raw mt19937 output each, in list order); both streams of a
//    transform are mt19937 seeded with it; draws use numpy's legacy RandomState algorithms.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace segscale::transforms {

enum class Stream : int { kOuter = 0, kInner = 1 };

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // numpy RandomState.rand(): uniform in [0, 1) with 53 bits.
  virtual double rand(int slot, Stream s) = 0;
  // numpy RandomState.randint(lo, hi): uniform integer in [lo, hi); no draw when hi - lo == 1.
  virtual std::int64_t randint(int slot, Stream s, std::int64_t lo, std::int64_t hi) = 0;
  // numpy RandomState.uniform(lo, hi) = lo + (hi - lo) * rand().
  double uniform(int slot, Stream s, double lo, double hi) { return lo + (hi - lo) * rand(slot, s); }
};

// numpy's legacy algorithms on a raw 32-bit mt19937 stream (std::mt19937 is bit-identical to numpy's).
double legacy_rand(std::mt19937& g);
std::int64_t legacy_randint(std::mt19937& g, std::int64_t lo, std::int64_t hi);

class MonaiRng final : public RandomSource {
 public:
  // `seed` as passed to monai.utils.set_determinism (taken mod 2^32); `random_transforms` in list order.
  MonaiRng(std::uint64_t seed, int random_transforms);
  double rand(int slot, Stream s) override;
  std::int64_t randint(int slot, Stream s, std::int64_t lo, std::int64_t hi) override;
  std::uint32_t child_seed(int slot) const { return child_seeds_.at(static_cast<std::size_t>(slot)); }

 private:
  std::mt19937& stream(int slot, Stream s);
  std::vector<std::uint32_t> child_seeds_;
  std::vector<std::mt19937> streams_;  // 2 per slot
};

class SampleRng final : public RandomSource {
 public:
  SampleRng(std::uint64_t seed, const std::string& case_key, std::uint64_t copy_index);
  double rand(int slot, Stream s) override;
  std::int64_t randint(int slot, Stream s, std::int64_t lo, std::int64_t hi) override;

 private:
  std::uint64_t next(int slot, Stream s);
  std::uint64_t base_;
  std::vector<std::uint64_t> counters_;
};

// Stable 64-bit FNV-1a hash of a string (used to key samples and shards by case key).
std::uint64_t stable_hash(const std::string& s);

}  // namespace segscale::transforms
