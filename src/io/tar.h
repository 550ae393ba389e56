#pragma once
// POSIX ustar members, as WebDataset shards use them: a 512-byte header, the data, zero padding to 512.
// Headers are deterministic (mtime 0, uid/gid 0, mode 0644) so identical content gives identical bytes.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace segscale::io {

inline constexpr std::size_t kTarBlock = 512;

// The header block of a regular-file member. Throws Error for names over 100 bytes or sizes past 8 GiB.
std::vector<std::uint8_t> tar_header(const std::string& name, std::uint64_t size);

// Bytes of zero padding after `size` bytes of member data.
inline std::size_t tar_padding(std::uint64_t size) { return static_cast<std::size_t>((kTarBlock - size % kTarBlock) % kTarBlock); }

struct TarMember {
  std::string name;
  std::uint64_t size = 0;
};

// Parses a header block. Returns false for an end-of-archive (all-zero) block. Throws Error("<where>: ...")
// for a bad checksum, a non-regular member, or malformed fields.
bool parse_tar_header(std::span<const std::uint8_t> block, const std::string& where, TarMember& out);

}  // namespace segscale::io
