#include "store/nnunet_sample.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

#include "io/npy.h"
#include "util/error.h"

namespace segscale::store {
using nlohmann::json;

json nnunet_sample_json(const std::string& case_key, const NnunetSampleMeta& m) {
  json locations = json::array();
  for (const auto& rows : m.class_locations) {
    std::vector<std::int64_t> flat;
    flat.reserve(rows.size() * 3);
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    locations.push_back(std::move(flat));
  }
  return {{"case", case_key},
          {"copy", 0},
          {"image_shape", {m.channels, m.shape[0], m.shape[1], m.shape[2]}},
          {"image_dtype", "float32"},
          {"label_shape", {1, m.shape[0], m.shape[1], m.shape[2]}},
          {"label_encoding", "int16 nnU-Net segmentation, -1 outside the nonzero crop"},
          {"properties", m.properties},
          {"class_locations", std::move(locations)}};
}

NnunetSampleMeta nnunet_sample_meta(std::span<const std::uint8_t> member, const std::string& where) {
  NnunetSampleMeta m;
  try {
    const json j = json::parse(member.begin(), member.end());
    const auto shape = j.at("image_shape").get<std::vector<std::int64_t>>();
    if (shape.size() != 4 || shape[0] < 1) throw Error(fmt::format("image_shape {} is not (C, a0, a1, a2)", j.at("image_shape").dump()));
    m.channels = static_cast<int>(shape[0]);
    m.shape = {shape[1], shape[2], shape[3]};
    for (std::int64_t s : m.shape)
      if (s < 1) throw Error(fmt::format("image_shape {} has an empty axis", j.at("image_shape").dump()));
    m.properties = j.value("properties", json::object());
    for (const auto& flat : j.at("class_locations")) {
      const auto v = flat.get<std::vector<std::int64_t>>();
      if (v.size() % 3 != 0) throw Error("class_locations: a list that is not i0, i1, i2 triples");
      auto& rows = m.class_locations.emplace_back();
      rows.reserve(v.size() / 3);
      for (std::size_t i = 0; i < v.size(); i += 3) {
        for (int a = 0; a < 3; ++a)
          if (v[i + a] < 0 || v[i + a] >= m.shape[a]) throw Error(fmt::format("class_locations: voxel ({}, {}, {}) outside the case", v[i], v[i + 1], v[i + 2]));
        rows.push_back({v[i], v[i + 1], v[i + 2]});
      }
    }
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: not an nnU-Net sample ({})", where, e.what()));
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", where, e.what()));
  }
  return m;
}

namespace {
template <typename T>
const T* typed(std::span<const std::uint8_t> member, const char* descr, const std::vector<std::int64_t>& shape, const std::string& where,
               std::vector<T>& copy) {
  const io::NpyHeader h = io::parse_npy_header(member, where);
  if (h.descr != descr || h.fortran_order || h.shape != shape)
    throw Error(fmt::format("{}: {} {} array, expected {} of shape {}", where, h.descr, fmt::join(h.shape, "x"), descr, fmt::join(shape, "x")));
  const std::uint8_t* p = member.data() + h.data_offset;
  const std::size_t bytes = h.element_count() * sizeof(T);
  if (member.size() < h.data_offset + bytes) throw Error(fmt::format("{}: shorter than its header says", where));
  if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) == 0) return reinterpret_cast<const T*>(p);
  copy.resize(h.element_count());
  std::memcpy(copy.data(), p, bytes);
  return copy.data();
}
}  // namespace

void nnunet_sample_arrays(std::span<const std::uint8_t> image_member, std::span<const std::uint8_t> label_member, const NnunetSampleMeta& m,
                          const std::string& where, NnunetSampleArrays& out) {
  out.image = typed<float>(image_member, "<f4", {m.channels, m.shape[0], m.shape[1], m.shape[2]}, where + ".image.npy", out.image_copy);
  out.seg = typed<std::int16_t>(label_member, "<i2", {1, m.shape[0], m.shape[1], m.shape[2]}, where + ".label.npy", out.seg_copy);
}

}  // namespace segscale::store
