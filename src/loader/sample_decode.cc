#include "loader/sample_decode.h"

#include <fmt/format.h>

#include <cstring>

#include "io/npy.h"
#include "util/error.h"
#include "util/half.h"

namespace segscale::loader {

transforms::Sample decode_sample(const store::StoreReader::Raw& raw, const std::string& where) {
  transforms::Sample s;
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(raw.json.begin(), raw.json.end());
  } catch (const nlohmann::json::exception& e) {
    throw error_at(where, std::string("malformed sample JSON: ") + e.what());
  }
  auto img = io::parse_npy_header(raw.image, where + " image");
  auto lab = io::parse_npy_header(raw.label, where + " label");
  if (img.shape.size() != 4 || lab.shape.size() != 4 || lab.shape[0] != 3 || img.fortran_order || lab.fortran_order ||
      !std::equal(img.shape.begin() + 1, img.shape.end(), lab.shape.begin() + 1) || lab.descr != "|u1")
    throw error_at(where, fmt::format("unexpected sample arrays: image {} {}, label {} {}", img.descr, img.shape.size(), lab.descr, lab.shape.size()));
  const transforms::Shape3 size{img.shape[1], img.shape[2], img.shape[3]};
  Affine a;
  if (meta.contains("affine")) {
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 4; ++c) a(r, c) = meta["affine"][r][c].get<double>();
  }
  s.image = transforms::Volume::make(img.shape[0], size, a);
  const std::uint8_t* p = raw.image.data() + img.data_offset;
  if (img.descr == "<f4") {
    std::memcpy(s.image.data.data(), p, s.image.data.size() * 4);
  } else if (img.descr == "<f2") {
    for (std::size_t i = 0; i < s.image.data.size(); ++i) {
      std::uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      s.image.data[i] = half_to_float(h);
    }
  } else {
    throw error_at(where, "image dtype " + img.descr + " is not float32 or float16");
  }
  s.label = transforms::LabelVolume::make(3, size, a);
  std::memcpy(s.label->data.data(), raw.label.data() + lab.data_offset, s.label->data.size());
  if (meta.contains("draws")) s.draws = meta["draws"];
  return s;
}

}  // namespace segscale::loader
