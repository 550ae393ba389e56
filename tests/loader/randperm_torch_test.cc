// torch_randperm (libtorch-free) against torch::randperm with a CPU generator, for many sizes and seeds.
#include <gtest/gtest.h>

#include <cstring>

#include "loader/order.h"
#include "model/torch_compat.h"

namespace segscale::loader {
namespace {

TEST(TorchRandpermParity, EqualsTorchRandperm) {
  for (std::uint64_t seed : {0ull, 1ull, 7ull, 41ull, 12345ull, 4294967295ull, 4294967296ull + 9, 1ull << 40}) {
    for (std::int64_t n : {0, 1, 2, 3, 7, 16, 100, 484, 1000, 4096, 48400}) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
      torch::Tensor perm = torch::randperm(n, gen, torch::kInt64);
      std::vector<std::int64_t> expected(static_cast<std::size_t>(n));
      if (n) std::memcpy(expected.data(), perm.data_ptr<std::int64_t>(), expected.size() * sizeof(std::int64_t));
      ASSERT_EQ(torch_randperm(n, seed), expected) << "n " << n << " seed " << seed;
    }
  }
}

}  // namespace
}  // namespace segscale::loader
