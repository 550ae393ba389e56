#include "io/npy.h"

#include <fmt/format.h>

#include <cstring>
#include <regex>

#include "io/file.h"
#include "util/error.h"

namespace segscale::io {
namespace {

int descr_size(const std::string& d) {
  if (d == "<f4") return 4;
  if (d == "<f2") return 2;
  if (d == "|u1" || d == "<u1") return 1;
  if (d == "<i2") return 2;
  if (d == "<i8") return 8;
  return 0;
}

}  // namespace

std::uint64_t NpyHeader::element_count() const {
  std::uint64_t n = 1;
  for (auto s : shape) n *= static_cast<std::uint64_t>(s);
  return n;
}

int NpyHeader::element_size() const { return descr_size(descr); }

Bytes encode_npy(const std::string& descr, const std::vector<std::int64_t>& shape,
                                     std::span<const std::uint8_t> data, bool fortran_order) {
  int esize = descr_size(descr);
  if (esize == 0) throw Error("npy: unsupported dtype " + descr);
  std::uint64_t n = 1;
  std::string dims;  // numpy's repr: "(3,)" for 1-D, "(3, 4)" otherwise
  for (std::size_t i = 0; i < shape.size(); ++i) {
    n *= static_cast<std::uint64_t>(shape[i]);
    dims += (i ? ", " : "") + std::to_string(shape[i]);
  }
  if (shape.size() == 1) dims += ",";
  if (n * static_cast<std::uint64_t>(esize) != data.size())
    throw Error(fmt::format("npy: {} data bytes for {} elements of {}", data.size(), n, descr));
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': {}, 'shape': ({}), }}", descr,
                                 fortran_order ? "True" : "False", dims);
  std::size_t total = 10 + dict.size() + 1;
  std::size_t pad = (64 - total % 64) % 64;
  dict += std::string(pad, ' ') + "\n";
  Bytes out(10 + dict.size() + data.size());
  std::memcpy(out.data(), "\x93NUMPY\x01\x00", 8);
  out[8] = static_cast<std::uint8_t>(dict.size() & 0xff);
  out[9] = static_cast<std::uint8_t>(dict.size() >> 8);
  std::memcpy(out.data() + 10, dict.data(), dict.size());
  if (!data.empty()) std::memcpy(out.data() + 10 + dict.size(), data.data(), data.size());
  return out;
}

NpyHeader parse_npy_header(std::span<const std::uint8_t> b, const std::string& where) {
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) throw error_at(where, "not an .npy file (bad magic)");
  int major = b[6];
  std::size_t hlen, start;
  if (major == 1) {
    hlen = b[8] | (static_cast<std::size_t>(b[9]) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw error_at(where, "truncated .npy header");
    hlen = b[8] | (static_cast<std::size_t>(b[9]) << 8) | (static_cast<std::size_t>(b[10]) << 16) | (static_cast<std::size_t>(b[11]) << 24);
    start = 12;
  } else {
    throw error_at(where, fmt::format("unsupported .npy version {}", major));
  }
  if (hlen > b.size() - start) throw error_at(where, "truncated .npy header");
  std::string dict(reinterpret_cast<const char*>(b.data() + start), hlen);
  static const std::regex kDescr(R"('descr'\s*:\s*'([^']*)')");
  static const std::regex kFortran(R"('fortran_order'\s*:\s*(True|False))");
  static const std::regex kShape(R"('shape'\s*:\s*\(([^)]*)\))");
  std::smatch m;
  NpyHeader h;
  if (!std::regex_search(dict, m, kDescr)) throw error_at(where, "npy header has no 'descr'");
  h.descr = m[1];
  if (descr_size(h.descr) == 0) throw error_at(where, "unsupported npy dtype '" + h.descr + "' (supported: <f4, <f2, |u1)");
  if (!std::regex_search(dict, m, kFortran)) throw error_at(where, "npy header has no 'fortran_order'");
  h.fortran_order = m[1] == "True";
  if (!std::regex_search(dict, m, kShape)) throw error_at(where, "npy header has no 'shape'");
  std::string dims = m[1];
  std::uint64_t count = 1;
  std::size_t pos = 0;
  while (pos < dims.size()) {
    std::size_t comma = dims.find(',', pos);
    std::string tok = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? dims.size() : comma + 1;
    tok.erase(0, tok.find_first_not_of(" "));
    tok.erase(tok.find_last_not_of(" ") + 1);
    if (tok.empty()) continue;
    if (tok.size() > 18 || tok.find_first_not_of("0123456789") != std::string::npos)
      throw error_at(where, "bad npy shape entry '" + tok + "'");
    std::int64_t v = std::stoll(tok);
    if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(v), &count)) throw error_at(where, "npy shape overflows");
    h.shape.push_back(v);
  }
  h.data_offset = start + hlen;
  std::uint64_t bytes;
  if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(h.element_size()), &bytes) || bytes > b.size() - h.data_offset)
    throw error_at(where, fmt::format("truncated .npy data: header describes {} elements, file holds {} bytes after the header",
                                      count, b.size() - h.data_offset));
  return h;
}

void write_npy(const std::filesystem::path& path, const std::vector<std::int64_t>& shape, std::span<const float> data, bool fortran_order) {
  auto bytes = encode_npy("<f4", shape, {reinterpret_cast<const std::uint8_t*>(data.data()), data.size_bytes()}, fortran_order);
  write_file_atomic(path, bytes);
}

template <typename T>
std::vector<T> read_npy(const std::filesystem::path& path, const std::string& descr, std::vector<std::int64_t>& shape) {
  const Bytes b = read_file(path);
  const NpyHeader h = parse_npy_header(b, path.string());
  if (h.descr != descr || h.fortran_order || h.element_size() != static_cast<int>(sizeof(T)))
    throw error_at(path.string(), fmt::format("a C-ordered {} array was expected, the file holds {}{}", descr, h.descr, h.fortran_order ? " (Fortran order)" : ""));
  shape = h.shape;
  std::vector<T> v(h.element_count());
  std::memcpy(v.data(), b.data() + h.data_offset, v.size() * sizeof(T));
  return v;
}
template std::vector<float> read_npy<float>(const std::filesystem::path&, const std::string&, std::vector<std::int64_t>&);
template std::vector<std::int16_t> read_npy<std::int16_t>(const std::filesystem::path&, const std::string&, std::vector<std::int64_t>&);
template std::vector<std::int64_t> read_npy<std::int64_t>(const std::filesystem::path&, const std::string&, std::vector<std::int64_t>&);

}  // namespace segscale::io
