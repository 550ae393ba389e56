#pragma once
// Train/validation split by case, never by copy (the case study's random split put copies of one patient in
// both sets, so its validation leaked).
#include <cstdint>
#include <string>
#include <vector>

#include "store/format.h"

namespace segscale::train {

struct Split {
  std::vector<std::string> val_cases;
  std::vector<std::size_t> train, val;  // indices into the store's samples
};

// Chooses round(fraction * cases) validation cases (at least 1 and at most cases - 1 when fraction > 0 and
// there are 2+ cases) by a stable hash of (seed, case key), so the split does not depend on the order cases
// are listed in. With `val_first_copy_only`, the validation set holds each validation case's copy 0 only.
Split split_by_case(const std::vector<store::SampleRef>& samples, double fraction, std::uint64_t seed, bool val_first_copy_only);

}  // namespace segscale::train
