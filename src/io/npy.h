#pragma once
// numpy's own .npy format (version 1.0 for writing; 1.0, 2.0 and 3.0 for reading), for little-endian
// float32, float16, uint8, int16 and int64 arrays.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "io/file.h"

namespace segscale::io {

struct NpyHeader {
  std::string descr;  // "<f4", "<f2", "|u1", "<i2" or "<i8"
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  std::size_t data_offset = 0;  // bytes before the array data
  std::uint64_t element_count() const;
  int element_size() const;  // from descr
};

// Serialises an .npy file image: header padded to a multiple of 64 bytes, then `data`.
// Throws Error if data.size() does not match shape x element size.
Bytes encode_npy(const std::string& descr, const std::vector<std::int64_t>& shape,
                                     std::span<const std::uint8_t> data, bool fortran_order = false);

// Parses the header at the start of `bytes` and checks that the data it describes is present.
// Throws Error("<where>: <problem>") for anything malformed or unsupported.
NpyHeader parse_npy_header(std::span<const std::uint8_t> bytes, const std::string& where);

// Reads a whole .npy file of the given dtype ("<f4", "<i2", "<i8", "|u1"): its shape, and the values.
// Throws Error naming the file for a malformed file or another dtype.
template <typename T>
std::vector<T> read_npy(const std::filesystem::path& path, const std::string& descr, std::vector<std::int64_t>& shape);

// Convenience: encode and write atomically.
void write_npy(const std::filesystem::path& path, const std::vector<std::int64_t>& shape, std::span<const float> data,
               bool fortran_order = false);

}  // namespace segscale::io
