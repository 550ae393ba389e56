#pragma once
// TFRecord framing, the container of TensorBoard's event files: each record is its length (uint64), the
// masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data, all little endian.
// libtorch-free.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace segscale::io {

// TensorFlow's masked CRC-32C: rotate right by 15 and add 0xa282ead8.
std::uint32_t tfrecord_masked_crc(const void* data, std::size_t n);

// One record, framed.
std::string tfrecord_frame(std::string_view data);

struct TfRecords {
  std::vector<std::string> records;
  std::size_t valid_bytes = 0;  // the bytes the records span, from the start
  bool torn = false;            // bytes after them did not form a whole record with good checksums
};

// Splits a file's bytes into records, stopping at the first torn or corrupt one (a writer killed mid-record).
TfRecords tfrecord_split(std::string_view bytes);

}  // namespace segscale::io
