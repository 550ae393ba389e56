#include "loader/sample_decode.h"

#include <fmt/format.h>

#include <cstring>

#include "io/npy.h"
#include "util/error.h"

namespace segscale::loader {

transforms::StoredArrays stored_arrays(const store::StoreReader::Raw& raw, const std::string& where) {
  const auto img = io::parse_npy_header(raw.image, where + " image");
  const auto lab = io::parse_npy_header(raw.label, where + " label");
  if (img.shape.size() != 4 || lab.shape.size() != 4 || lab.shape[0] != 3 || img.fortran_order || lab.fortran_order ||
      !std::equal(img.shape.begin() + 1, img.shape.end(), lab.shape.begin() + 1) || lab.descr != "|u1")
    throw error_at(where, fmt::format("unexpected sample arrays: image {} {}, label {} {}", img.descr, img.shape.size(), lab.descr, lab.shape.size()));
  if (img.descr != "<f4" && img.descr != "<f2") throw error_at(where, "image dtype " + img.descr + " is not float32 or float16");
  transforms::StoredArrays a;
  a.channels = img.shape[0];
  a.size = {img.shape[1], img.shape[2], img.shape[3]};
  a.float16 = img.descr == "<f2";
  a.image = raw.image.data() + img.data_offset;
  a.label = raw.label.data() + lab.data_offset;
  a.label_channels = lab.shape[0];
  return a;
}

transforms::Sample decode_sample(const store::StoreReader::Raw& raw, const std::string& where) {
  const transforms::StoredArrays a = stored_arrays(raw, where);
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(raw.json.begin(), raw.json.end());
  } catch (const nlohmann::json::exception& e) {
    throw error_at(where, std::string("malformed sample JSON: ") + e.what());
  }
  Affine affine;
  if (meta.contains("affine")) {
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 4; ++c) affine(r, c) = meta["affine"][r][c].get<double>();
  }
  // The whole grid: a window over everything, nothing flipped, no point operations.
  transforms::WindowPlan whole;
  whole.window.size = a.size;
  transforms::Sample s;
  s.image = transforms::Volume::make(a.channels, a.size, affine);
  s.label = transforms::LabelVolume::make(a.label_channels, a.size, affine);
  transforms::run_window(whole, a, s.image.data.data(), s.label->data.data(), where);
  if (meta.contains("draws")) s.draws = meta["draws"];
  return s;
}

}  // namespace segscale::loader
