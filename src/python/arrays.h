#pragma once
// C++ buffers handed to Python without a copy: the array's memory stays owned by a heap object that a
// capsule frees when the last array viewing it is gone. NumPy arrays export DLPack, so torch.from_dlpack and
// numpy.asarray see the same memory.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace segscale::python {

namespace nb = nanobind;

// A NumPy array of `shape` over `data`, keeping `owner` (any shared object holding the memory) alive.
template <typename T, typename Owner>
nb::ndarray<nb::numpy, T> share_array(T* data, const std::vector<std::size_t>& shape, std::shared_ptr<Owner> owner) {
  auto* keep = new std::shared_ptr<Owner>(std::move(owner));
  nb::capsule capsule(keep, [](void* p) noexcept { delete static_cast<std::shared_ptr<Owner>*>(p); });
  return nb::ndarray<nb::numpy, T>(data, shape.size(), shape.data(), capsule);
}

template <std::size_t N>
std::vector<std::size_t> dims(const std::array<std::int64_t, N>& a) {
  return std::vector<std::size_t>(a.begin(), a.end());
}

}  // namespace segscale::python
