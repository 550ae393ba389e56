#include "io/nifti_image.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "io/file.h"
#include "io/gzip.h"
#include "util/error.h"

namespace segscale::io {
namespace fs = std::filesystem;
namespace {

constexpr bool kNativeBig = std::endian::native == std::endian::big;

// For a pair, the file holding the voxels: x.hdr -> x.img, x.hdr.gz -> x.img.gz (or the other
// compression state if that is what exists).
fs::path image_file_for(const fs::path& hdr_path) {
  std::string s = hdr_path.string();
  bool gz = has_suffix(hdr_path, ".gz");
  std::string stem = s.substr(0, s.size() - (gz ? 7 : 4));  // strip ".hdr(.gz)"
  for (const char* ext : {gz ? ".img.gz" : ".img", gz ? ".img" : ".img.gz"})
    if (fs::exists(stem + ext)) return stem + ext;
  return stem + (gz ? ".img.gz" : ".img");
}

fs::path header_file_for(const fs::path& path) {
  std::string s = path.string();
  for (const char* ext : {".img", ".img.gz"})
    if (has_suffix(path, ext)) {
      std::string stem = s.substr(0, s.size() - std::strlen(ext));
      for (const char* h : {".hdr", ".hdr.gz"})
        if (fs::exists(stem + h)) return stem + h;
      throw error_at(s, "an .img file without its .hdr header beside it");
    }
  return path;
}

std::vector<std::uint8_t> header_bytes(std::span<const std::uint8_t> file, const std::string& where) {
  if (looks_like_gzip(file)) return gunzip_prefix(file, kNifti2HeaderSize, where);
  return {file.begin(), file.begin() + std::min<std::size_t>(file.size(), kNifti2HeaderSize)};
}

std::string size_story(const NiftiHeader& h) {
  std::string dims;
  for (auto d : h.shape()) dims += (dims.empty() ? "" : "x") + std::to_string(d);
  return fmt::format("vox_offset {} + {} voxels of {} ({} bytes)", h.vox_offset, dims, dtype_name(h.datatype), h.data_bytes());
}

// Returns a buffer holding at least `needed` bytes of the (possibly gzipped) file content.
Bytes load_content(Bytes file, std::uint64_t needed, const NiftiHeader& h,
                                       const std::string& where) {
  if (looks_like_gzip(file)) {
    if (needed > max_inflated_size(file.size()))
      throw error_at(where, fmt::format("header claims {} bytes ({}), more than this {}-byte gzip file can inflate to; "
                                        "corrupt header or gzip bomb",
                                        needed, size_story(h), file.size()));
    return gunzip_exact(file, static_cast<std::size_t>(needed), where);
  }
  if (file.size() < needed)
    throw error_at(where, fmt::format("truncated: file has {} bytes, header needs {} ({})", file.size(), needed, size_story(h)));
  return file;
}

}  // namespace

void byteswap_inplace(std::span<std::uint8_t> data, int elem_size) {
  if (elem_size <= 1) return;
  for (std::size_t i = 0; i + elem_size <= data.size(); i += elem_size) std::reverse(data.data() + i, data.data() + i + elem_size);
}

NiftiHeader read_nifti_header(const fs::path& path) {
  fs::path hdr_path = header_file_for(path);
  auto file = read_file(hdr_path);
  return parse_nifti_header(header_bytes(file, hdr_path.string()), hdr_path.string());
}

NiftiImage decode_nifti(Bytes file, const std::string& where) {
  NiftiImage img;
  img.header = parse_nifti_header(header_bytes(file, where), where);
  if (img.header.pair) throw error_at(where, "header of a .hdr/.img pair, but no image file given");
  const std::uint64_t needed = static_cast<std::uint64_t>(img.header.vox_offset) + img.header.data_bytes();
  img.storage = load_content(std::move(file), needed, img.header, where);
  img.data_offset = static_cast<std::size_t>(img.header.vox_offset);
  if (img.header.big_endian != kNativeBig) byteswap_inplace(img.data(), dtype_size(img.header.datatype));
  return img;
}

NiftiImage read_nifti(const fs::path& path) {
  fs::path hdr_path = header_file_for(path);
  const std::string where = hdr_path.string();
  auto file = read_file(hdr_path);
  NiftiImage img;
  img.header = parse_nifti_header(header_bytes(file, where), where);
  const NiftiHeader& h = img.header;
  const std::uint64_t needed = static_cast<std::uint64_t>(h.vox_offset) + h.data_bytes();
  bool pair_by_name = has_suffix(hdr_path, ".hdr") || has_suffix(hdr_path, ".hdr.gz");
  if (h.pair || pair_by_name) {
    if (!h.pair)
      throw error_at(where, "a .hdr file whose magic says single-file NIfTI (n+1/n+2); rename it to .nii");
    fs::path img_path = image_file_for(hdr_path);
    if (!fs::exists(img_path)) throw error_at(where, "header of a .hdr/.img pair, but " + img_path.string() + " does not exist");
    file = read_file(img_path);
    img.storage = load_content(std::move(file), needed, h, img_path.string());
  } else {
    img.storage = load_content(std::move(file), needed, h, where);
  }
  img.data_offset = static_cast<std::size_t>(h.vox_offset);
  if (h.big_endian != kNativeBig) byteswap_inplace(img.data(), dtype_size(h.datatype));
  return img;
}

VoxelScaling::VoxelScaling(const NiftiHeader& h) {
  if (auto sc = h.scaling()) {
    slope = sc->first;
    inter = sc->second;
    mul = slope != 1.0;
    add = inter != 0.0;
  }
}

void to_float32(const NiftiHeader& h, std::span<const std::uint8_t> data, float* out) {
  const std::size_t n = h.voxel_count();
  if (data.size() < h.data_bytes()) throw Error("to_float32: buffer smaller than the header's data size");
  const VoxelScaling scale(h);
  visit_dtype(h.datatype, [&](auto tag) {
    using T = decltype(tag);
    const std::uint8_t* p = data.data();
    for (std::size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, p + i * sizeof(T), sizeof(T));
      out[i] = scale(v);
    }
  });
}

std::vector<float> to_float32(const NiftiImage& image) {
  std::vector<float> out(image.header.voxel_count());
  to_float32(image.header, image.data(), out.data());
  return out;
}

void write_nifti(const fs::path& path, const NiftiHeader& header, std::span<const std::uint8_t> native_data, int gzip_level) {
  if (native_data.size() != header.data_bytes())
    throw error_at(path.string(), fmt::format("write_nifti: {} data bytes given, header describes {}", native_data.size(), header.data_bytes()));
  if (header.pair) throw error_at(path.string(), "write_nifti writes single files only (.nii/.nii.gz)");
  auto head = serialize_nifti_header(header);
  Bytes bytes(head.begin(), head.end());
  std::size_t off = bytes.size();
  bytes.resize(off + native_data.size());
  std::memcpy(bytes.data() + off, native_data.data(), native_data.size());
  if (header.big_endian != kNativeBig) byteswap_inplace({bytes.data() + off, native_data.size()}, dtype_size(header.datatype));
  if (has_suffix(path, ".gz")) bytes = gzip_compress(bytes, gzip_level);
  write_file_atomic(path, bytes);
}

}  // namespace segscale::io
