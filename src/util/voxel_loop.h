#pragma once
// Hot voxel loops compiled twice, for AVX2 and for the x86-64 baseline (SSE2), the better one picked when the
// program loads (GCC's function multi-versioning). Both give the same bits: the loops do the same IEEE
// operations in the same order (no FMA contraction: -ffp-contract=off; sums keep their explicit lanes), only
// more lanes per instruction. Put SEGSCALE_VOXEL_LOOP on a non-template function; what it calls must be
// SEGSCALE_INLINE so that it is compiled into each version. Such a function must not throw (mark it
// noexcept): GCC 12 can take a caller of a multi-versioned function for nothrow and drop its unwinding paths.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define SEGSCALE_VOXEL_LOOP __attribute__((target_clones("avx2", "default")))
#else
#define SEGSCALE_VOXEL_LOOP
#endif
#define SEGSCALE_INLINE [[gnu::always_inline]] inline
