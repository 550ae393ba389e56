#pragma once
// Helpers that build NIfTI file images byte by byte, for tests of the reader.
#include <cstring>
#include <filesystem>
#include <vector>

#include "io/file.h"
#include "io/gzip.h"
#include "io/nifti_header.h"

namespace segscale::testing {

inline std::vector<std::uint8_t> nifti_bytes(const io::NiftiHeader& h, const std::vector<std::uint8_t>& data) {
  auto b = io::serialize_nifti_header(h);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

template <typename Bytes>
void write_bytes(const std::filesystem::path& p, const Bytes& b) {
  io::write_file_atomic(p, std::span<const std::uint8_t>(b.data(), b.size()));
}

template <typename T>
void put_at(std::vector<std::uint8_t>& b, std::size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

}  // namespace segscale::testing
