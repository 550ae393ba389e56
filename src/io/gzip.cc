#include "io/gzip.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <limits>
#include <memory>

#include "util/error.h"

namespace segscale::io {
namespace {

struct DecompressorDeleter {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};
struct CompressorDeleter {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};

// Streaming inflate with zlib across concatenated members, writing into out[0, limit). Returns bytes
// written. `limit` may be SIZE_MAX with `grow` set, in which case `out` grows as needed.
std::size_t zlib_inflate(std::span<const std::uint8_t> in, Bytes& out, std::size_t limit,
                         bool grow, const std::string& where) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw error_at(where, "zlib initialisation failed");
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&zs, &inflateEnd);
  std::size_t in_pos = 0, out_pos = 0;
  constexpr std::size_t kChunk = 1u << 30;  // z_stream counts are 32-bit
  bool member_done = false;
  for (;;) {
    if (out_pos >= limit) return out_pos;
    if (grow && out_pos == out.size()) out.resize(std::max<std::size_t>(out.size() * 2, 1 << 16));
    std::size_t out_room = std::min({out.size() - out_pos, limit - out_pos, kChunk});
    std::size_t in_room = std::min(in.size() - in_pos, kChunk);
    if (member_done) {
      // Another member follows only if gzip magic does; gzip(1) also ignores trailing zero padding.
      if (in_room < 2 || in[in_pos] != 0x1f || in[in_pos + 1] != 0x8b) return out_pos;
      inflateReset(&zs);
      member_done = false;
    }
    if (in_room == 0) throw error_at(where, "truncated gzip data (stream ends without its end marker)");
    zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in_room);
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(out_room);
    int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_room - zs.avail_in;
    out_pos += out_room - zs.avail_out;
    if (rc == Z_STREAM_END) {
      member_done = true;
    } else if (rc == Z_BUF_ERROR) {
      if (in_pos == in.size()) throw error_at(where, "truncated gzip data (stream ends without its end marker)");
    } else if (rc != Z_OK) {
      throw error_at(where, std::string("corrupt gzip data: ") + (zs.msg ? zs.msg : "inflate failed"));
    }
  }
}

}  // namespace

bool looks_like_gzip(std::span<const std::uint8_t> data) {
  return data.size() >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

std::uint64_t max_inflated_size(std::uint64_t compressed_size) {
  if (compressed_size > std::numeric_limits<std::uint64_t>::max() / 1032) return std::numeric_limits<std::uint64_t>::max();
  return compressed_size * 1032 + 1024;
}

std::vector<std::uint8_t> gunzip_prefix(std::span<const std::uint8_t> in, std::size_t n, const std::string& where) {
  std::vector<std::uint8_t> out(n);
  // A prefix read tolerates a stream that ends early: the caller decides whether that is an error.
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw error_at(where, "zlib initialisation failed");
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&zs, &inflateEnd);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size(), 1u << 30));
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(n);
  int rc = inflate(&zs, Z_SYNC_FLUSH);
  if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
    throw error_at(where, std::string("corrupt gzip data: ") + (zs.msg ? zs.msg : "inflate failed"));
  out.resize(n - zs.avail_out);
  return out;
}

Bytes gunzip_exact(std::span<const std::uint8_t> in, std::size_t expected, const std::string& where) {
  Bytes out(expected);
  // Fast path: the trailer's ISIZE (size mod 2^32 of the last member) says a single member holds exactly
  // what we need, so libdeflate can inflate it in one call into a buffer of exactly that size.
  if (in.size() >= 18) {
    std::uint32_t isize = static_cast<std::uint32_t>(in[in.size() - 4]) | (static_cast<std::uint32_t>(in[in.size() - 3]) << 8) |
                          (static_cast<std::uint32_t>(in[in.size() - 2]) << 16) | (static_cast<std::uint32_t>(in[in.size() - 1]) << 24);
    if (isize == static_cast<std::uint32_t>(expected)) {
      std::unique_ptr<libdeflate_decompressor, DecompressorDeleter> d(libdeflate_alloc_decompressor());
      if (!d) throw error_at(where, "out of memory allocating a decompressor");
      std::size_t in_used = 0, out_got = 0;
      auto rc = libdeflate_gzip_decompress_ex(d.get(), in.data(), in.size(), out.data(), out.size(), &in_used, &out_got);
      if (rc == LIBDEFLATE_SUCCESS && out_got == expected) return out;
      // Anything else (multi-member, bigger stream, corruption) is settled by the streaming path, which
      // also produces the precise error message.
    }
  }
  std::size_t got = zlib_inflate(in, out, expected, false, where);
  if (got < expected)
    throw error_at(where, "truncated: gzip data inflates to " + std::to_string(got) + " bytes, header needs " +
                              std::to_string(expected));
  return out;
}

Bytes gunzip_zlib(std::span<const std::uint8_t> in, const std::string& where) {
  Bytes out(std::max<std::size_t>(in.size() * 4, 1 << 16));
  std::size_t got = zlib_inflate(in, out, std::numeric_limits<std::size_t>::max(), true, where);
  out.resize(got);
  return out;
}

Bytes gzip_compress(std::span<const std::uint8_t> data, int level) {
  std::unique_ptr<libdeflate_compressor, CompressorDeleter> c(libdeflate_alloc_compressor(level));
  if (!c) throw Error("gzip: cannot create a compressor at level " + std::to_string(level));
  Bytes out(libdeflate_gzip_compress_bound(c.get(), data.size()));
  std::size_t n = libdeflate_gzip_compress(c.get(), data.data(), data.size(), out.data(), out.size());
  if (n == 0) throw Error("gzip: compression failed");
  out.resize(n);
  return out;
}

}  // namespace segscale::io
