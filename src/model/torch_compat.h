#pragma once
// The one place where libtorch versions differ for segscale: Debian's 1.13 (CPU) and the 2.x inside
// PyTorch wheels (CUDA). Everything else includes this instead of guessing.
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

namespace segscale::compat {

inline constexpr int kTorchMajor = TORCH_VERSION_MAJOR;
inline constexpr int kTorchMinor = TORCH_VERSION_MINOR;

// Autocast: 1.13 has per-device-type setters only for CUDA (at::autocast::set_enabled); 2.x takes a device
// type. bf16/fp16 selection goes through the same call in both.
inline void set_autocast(bool enabled, at::ScalarType dtype) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
  at::autocast::set_enabled(enabled);
  at::autocast::set_autocast_gpu_dtype(dtype);
#endif
  if (!enabled) at::autocast::clear_cache();
}

}  // namespace segscale::compat
