#include "io/tar.h"

#include <fmt/format.h>

#include <cstring>

#include "util/error.h"

namespace segscale::io {
namespace {

void octal(std::uint8_t* field, std::size_t width, std::uint64_t value) {
  std::string s = fmt::format("{:0{}o}", value, width - 1);
  std::memcpy(field, s.data(), width - 1);
  field[width - 1] = 0;
}

std::uint64_t parse_octal(const std::uint8_t* field, std::size_t width, const std::string& where, const char* what) {
  std::uint64_t v = 0;
  std::size_t i = 0;
  while (i < width && (field[i] == ' ' || field[i] == 0)) ++i;
  bool any = false;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (v > (UINT64_MAX >> 3)) throw error_at(where, fmt::format("tar header {} overflows", what));
    v = v * 8 + (field[i] - '0');
    any = true;
  }
  for (; i < width; ++i)
    if (field[i] != ' ' && field[i] != 0) throw error_at(where, fmt::format("tar header {} is not an octal number", what));
  if (!any) throw error_at(where, fmt::format("tar header {} is empty", what));
  return v;
}

}  // namespace

std::vector<std::uint8_t> tar_header(const std::string& name, std::uint64_t size) {
  if (name.empty() || name.size() > 100) throw Error(fmt::format("tar: member name '{}' must be 1..100 bytes", name));
  if (size >= (1ULL << 33)) throw Error(fmt::format("tar: member {} of {} bytes exceeds ustar's 8 GiB", name, size));
  std::vector<std::uint8_t> h(kTarBlock, 0);
  std::memcpy(h.data(), name.data(), name.size());
  octal(&h[100], 8, 0644);
  octal(&h[108], 8, 0);
  octal(&h[116], 8, 0);
  octal(&h[124], 12, size);
  octal(&h[136], 12, 0);
  std::memset(&h[148], ' ', 8);
  h[156] = '0';
  std::memcpy(&h[257], "ustar\0" "00", 8);
  unsigned sum = 0;
  for (auto b : h) sum += b;
  std::string s = fmt::format("{:06o}", sum);
  std::memcpy(&h[148], s.data(), 6);
  h[154] = 0;
  h[155] = ' ';
  return h;
}

bool parse_tar_header(std::span<const std::uint8_t> b, const std::string& where, TarMember& out) {
  if (b.size() < kTarBlock) throw error_at(where, "truncated tar header");
  bool zero = true;
  for (std::size_t i = 0; i < kTarBlock && zero; ++i) zero = b[i] == 0;
  if (zero) return false;
  const std::uint64_t stored = parse_octal(&b[148], 8, where, "checksum");
  unsigned sum = 0;
  for (std::size_t i = 0; i < kTarBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : b[i];
  if (stored != sum) throw error_at(where, fmt::format("tar header checksum mismatch (stored {}, computed {})", stored, sum));
  if (b[156] != '0' && b[156] != 0) throw error_at(where, fmt::format("tar member type '{}' is not a regular file", static_cast<char>(b[156])));
  out.name.assign(reinterpret_cast<const char*>(b.data()), strnlen(reinterpret_cast<const char*>(b.data()), 100));
  out.size = parse_octal(&b[124], 12, where, "size");
  return true;
}

}  // namespace segscale::io
