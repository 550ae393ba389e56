#pragma once
// gzip for NIfTI files: libdeflate's whole-buffer inflate on the fast path (several times faster than
// zlib), zlib's streaming inflate for multi-member streams, streams whose trailer does not state the
// expected size (over 4 GiB, or concatenated), and for reading just a prefix.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/file.h"

namespace segscale::io {

// True if `data` starts with the gzip magic bytes 1f 8b.
bool looks_like_gzip(std::span<const std::uint8_t> data);

// Largest size `compressed_size` bytes of deflate data can inflate to (deflate's limit is 1032:1).
// Used to reject headers that claim more data than the file could possibly hold.
std::uint64_t max_inflated_size(std::uint64_t compressed_size);

// Inflates at most `n` bytes from the start of the gzip stream (members are concatenated as gzip(1)
// does). Returns fewer than `n` bytes only when the stream ends first. Throws Error("<where>: ...") on
// corrupt data.
std::vector<std::uint8_t> gunzip_prefix(std::span<const std::uint8_t> in, std::size_t n, const std::string& where);

// Inflates exactly the first `expected` bytes of the gzip stream; bytes past them are never inflated,
// so a stream that would expand further (a gzip bomb, trailing junk) costs no more than `expected`.
// Throws Error naming `where` if the stream is corrupt or ends before `expected` bytes ("truncated").
Bytes gunzip_exact(std::span<const std::uint8_t> in, std::size_t expected, const std::string& where);

// zlib-only inflate of the whole stream (all members), no size hint: the baseline the benchmark compares
// libdeflate against, and a reference in tests. Throws Error on corrupt or truncated data.
Bytes gunzip_zlib(std::span<const std::uint8_t> in, const std::string& where);

// gzip-compresses `data` as one member with libdeflate at `level` (1 fastest .. 12 smallest).
Bytes gzip_compress(std::span<const std::uint8_t> data, int level = 4);

}  // namespace segscale::io
