#include "data/case_check.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/nifti_image.h"
#include "util/error.h"

namespace segscale::data {

CaseReport check_case(const Case& c, const Catalog& catalog, const LabelMap* labels) {
  auto fail = [&](const std::string& what, const std::filesystem::path& file) {
    return Error(fmt::format("case {}: {} ({})", c.key, what, file.string()));
  };
  auto read_header = [&](const std::filesystem::path& p) {
    try {
      return io::read_nifti_header(p);
    } catch (const Error& e) {
      throw Error(fmt::format("case {}: {}", c.key, e.what()));
    }
  };
  auto spatial = [](const io::NiftiHeader& h) {
    std::array<std::int64_t, 3> s{1, 1, 1};
    for (int i = 0; i < std::min(3, h.ndim()); ++i) s[i] = h.dim[i + 1];
    return s;
  };
  auto extra_dims = [](const io::NiftiHeader& h) {
    std::int64_t n = 1;
    for (int i = 4; i <= h.ndim(); ++i) n *= h.dim[i];
    return n;
  };

  CaseReport r;
  Affine first_affine;
  for (std::size_t i = 0; i < c.images.size(); ++i) {
    auto h = read_header(c.images[i]);
    auto s = spatial(h);
    if (h.ndim() < 3) throw fail(fmt::format("image has {} dimensions, expected 3-D or 4-D", h.ndim()), c.images[i]);
    if (i == 0) {
      r.spatial_shape = s;
      first_affine = h.best_affine();
    } else {
      if (s != r.spatial_shape)
        throw fail(fmt::format("modality shape {} differs from {} of {}", fmt::join(s, "x"), fmt::join(r.spatial_shape, "x"),
                               c.images[0].filename().string()),
                   c.images[i]);
      if (max_abs_diff(h.best_affine(), first_affine) > 1e-3)
        throw fail("modality affine differs from " + c.images[0].filename().string() + " (not co-registered)", c.images[i]);
    }
    r.channels += static_cast<int>(extra_dims(h));
  }
  if (!catalog.modalities.empty() && r.channels != static_cast<int>(catalog.modalities.size()))
    throw fail(fmt::format("image has {} channels, the dataset lists {} modalities ({})", r.channels, catalog.modalities.size(),
                           fmt::join(catalog.modalities, ", ")),
               c.images[0]);
  if (c.label.empty()) return r;
  auto lh = read_header(c.label);
  if (extra_dims(lh) != 1) throw fail(fmt::format("label has {} dimensions, expected a 3-D label map", lh.ndim()), c.label);
  if (spatial(lh) != r.spatial_shape)
    throw fail(fmt::format("label shape {} differs from image shape {}", fmt::join(spatial(lh), "x"), fmt::join(r.spatial_shape, "x")),
               c.label);
  if (max_abs_diff(lh.best_affine(), first_affine) > 1e-3) throw fail("label affine differs from the image's", c.label);
  if (labels) {
    io::NiftiImage img;
    try {
      img = io::read_nifti(c.label);
    } catch (const Error& e) {
      throw Error(fmt::format("case {}: {}", c.key, e.what()));
    }
    auto values = io::to_float32(img);
    try {
      r.label_counts = count_and_check_labels(values.data(), values.size(), *labels, c.label.string());
    } catch (const Error& e) {
      throw Error(fmt::format("case {}: {}", c.key, e.what()));
    }
  }
  return r;
}

}  // namespace segscale::data
