#pragma once
// The one place where libtorch versions differ for segscale: Debian's 1.13 (CPU) and the 2.x inside
// PyTorch wheels (CUDA). Everything else includes this instead of guessing.
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdint>
#include <optional>

// CUDA memory queries: only against a CUDA libtorch (a wheel's; Debian's CPU libtorch ships c10/cuda headers
// without their generated macros) with the CUDA runtime's header.
#if __has_include(<c10/cuda/impl/cuda_cmake_macros.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#define SEGSCALE_COMPAT_CUDA_MEMORY 1
#endif

namespace segscale::compat {

inline constexpr int kTorchMajor = TORCH_VERSION_MAJOR;
inline constexpr int kTorchMinor = TORCH_VERSION_MINOR;

// Autocast for `device` (CPU or CUDA) with `dtype` (CUDA: bf16 or fp16; CPU: bf16). 1.13 and 2.0-2.3 have
// per-device-type setters (set_enabled / set_cpu_enabled, set_autocast_gpu_dtype / set_autocast_cpu_dtype);
// 2.4+ takes a device type. Disabling also clears autocast's cast cache.
inline void set_autocast(c10::DeviceType device, bool enabled, at::ScalarType dtype) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(device, enabled);
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
  if (!enabled) at::autocast::clear_cache();
}

// Bytes a new allocation on CUDA device `index` can still get: the driver's free memory plus what the caching
// allocator holds unused. nullopt on builds without the CUDA runtime's headers.
inline std::optional<std::uint64_t> cuda_free_bytes([[maybe_unused]] int index) {
#ifdef SEGSCALE_COMPAT_CUDA_MEMORY
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(index));
  std::size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) return std::nullopt;
  std::uint64_t held_unused = 0;
  try {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    const auto reserved = stats.reserved_bytes[0].current, allocated = stats.allocated_bytes[0].current;
    held_unused = static_cast<std::uint64_t>(reserved > allocated ? reserved - allocated : 0);
  } catch (const c10::Error&) {
    // "Invalid device argument": the allocator has not been initialised on this device yet (nothing was
    // allocated there by this process; seen on an H100 with libtorch 2.11), so it holds nothing.
  }
  return static_cast<std::uint64_t>(free) + held_unused;
#else
  return std::nullopt;
#endif
}

}  // namespace segscale::compat
