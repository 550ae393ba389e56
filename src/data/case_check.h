#pragma once
// Consistency checks of one case's files, with errors that name the case.
#include <array>
#include <cstdint>
#include <map>
#include <optional>

#include "data/catalog.h"
#include "data/label_map.h"

namespace segscale::data {

struct CaseReport {
  std::array<std::int64_t, 3> spatial_shape{};
  int channels = 0;
  std::map<int, std::uint64_t> label_counts;  // filled when labels were read
};

// Reads the headers of the case's image(s) and label and checks that they describe one grid: every
// modality has the same spatial shape and affine (to 1e-3 mm), the image has as many channels as the
// catalog has modalities (when it lists them), and the label is 3-D on the same grid. With `labels`
// set it also reads the label data and checks every value against the map. Throws Error
// "case KEY: <problem> (<file>)".
CaseReport check_case(const Case& c, const Catalog& catalog, const LabelMap* labels);

}  // namespace segscale::data
