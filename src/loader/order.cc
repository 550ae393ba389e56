#include "loader/order.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "util/error.h"

namespace segscale::loader {

std::vector<std::int64_t> torch_randperm(std::int64_t n, std::uint64_t seed) {
  if (n < 0) throw Error(fmt::format("randperm: n = {} is negative", n));
  if (n >= std::numeric_limits<std::uint32_t>::max() / 20)
    throw Error(fmt::format("randperm: n = {} is beyond the sizes whose torch order is reproduced", n));
  std::vector<std::int64_t> r(static_cast<std::size_t>(n));
  std::iota(r.begin(), r.end(), std::int64_t{0});
  std::mt19937 gen(static_cast<std::uint32_t>(seed & 0xffffffffu));  // at::mt19937's init_with_uint32
  for (std::int64_t i = 0; i + 1 < n; ++i) {
    const std::int64_t z = static_cast<std::int64_t>(gen() % static_cast<std::uint64_t>(n - i));
    std::swap(r[static_cast<std::size_t>(i)], r[static_cast<std::size_t>(z + i)]);
  }
  return r;
}

std::vector<std::int64_t> distributed_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch, bool shuffle, int rank, int world,
                                            bool drop_last) {
  std::vector<std::int64_t> idx;
  if (shuffle) {
    idx = torch_randperm(n, seed + static_cast<std::uint64_t>(epoch));
  } else {
    idx.resize(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), std::int64_t{0});
  }
  const double per = drop_last && n % world != 0 ? static_cast<double>(n - world) / world : static_cast<double>(n) / world;
  const std::int64_t per_rank = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(per)));
  const std::int64_t total = per_rank * world;
  if (!drop_last) {
    std::vector<std::int64_t> padded = idx;
    while (static_cast<std::int64_t>(padded.size()) < total)
      for (std::int64_t i = 0; i < n && static_cast<std::int64_t>(padded.size()) < total; ++i) padded.push_back(idx[i]);
    idx = padded;
  } else {
    idx.resize(static_cast<std::size_t>(total));
  }
  std::vector<std::int64_t> out;
  for (std::int64_t i = rank; i < total; i += world) out.push_back(idx[i]);
  return out;
}

}  // namespace segscale::loader
