#include "io/tfrecord.h"

#include <cstring>

#include "util/crc32c.h"

namespace segscale::io {
namespace {

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

}  // namespace

std::uint32_t tfrecord_masked_crc(const void* data, std::size_t n) {
  const std::uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string tfrecord_frame(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_le(out, data.size(), 8);
  put_le(out, tfrecord_masked_crc(out.data(), 8), 4);
  out.append(data);
  put_le(out, tfrecord_masked_crc(data.data(), data.size()), 4);
  return out;
}

TfRecords tfrecord_split(std::string_view bytes) {
  TfRecords r;
  std::size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 12) break;
    const char* p = bytes.data() + at;
    const std::uint64_t len = get_le(p, 8);
    if (get_le(p + 8, 4) != tfrecord_masked_crc(p, 8)) break;
    if (len > bytes.size() - at - 12 || bytes.size() - at - 12 - len < 4) break;
    if (get_le(p + 12 + len, 4) != tfrecord_masked_crc(p + 12, len)) break;
    r.records.emplace_back(p + 12, len);
    at += 16 + len;
  }
  r.valid_bytes = at;
  r.torn = at != bytes.size();
  return r;
}

}  // namespace segscale::io
