#pragma once
// The order of an epoch, as PyTorch's DistributedSampler makes it, without libtorch.
#include <cstdint>
#include <vector>

namespace segscale::loader {

// torch.randperm(n, generator=g) on the CPU after g.manual_seed(seed): the same permutation, element for
// element (torch's CPUGeneratorImpl is an mt19937 seeded with the low 32 bits of `seed`; randperm_cpu swaps
// r[i] with r[i + random() % (n - i)] for i < n - 1). Throws Error for n >= 2^32 / 20, where torch switches
// to another algorithm (never reached by a store's sample count).
std::vector<std::int64_t> torch_randperm(std::int64_t n, std::uint64_t seed);

// PyTorch's DistributedSampler: randperm(n) from a generator seeded with seed + epoch (or 0..n-1 without
// shuffle), padded by repetition to a multiple of world (or cut with drop_last), then every world-th from rank.
std::vector<std::int64_t> distributed_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch, bool shuffle, int rank, int world,
                                            bool drop_last);

}  // namespace segscale::loader
