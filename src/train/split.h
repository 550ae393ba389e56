#pragma once
// Train/validation split by case, never by copy (the case study's random split put copies of one patient in
// both sets, so its validation leaked).
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
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

// One fold of a cross-validation: its training and validation case keys.
struct Fold {
  std::vector<std::string> train, val;
};

// nnU-Net's cross-validation split (nnunetv2 generate_crossval_split: sklearn KFold(n_splits, shuffle=True,
// random_state=seed) over the sorted case keys; numpy's legacy shuffle of arange(N), fold i the i-th contiguous
// block, the first N mod n_splits folds one case larger; keys of each list in ascending order). Throws Error when
// there are fewer cases than splits.
std::vector<Fold> nnunet_kfold(std::vector<std::string> case_keys, int n_splits = 5, std::uint32_t seed = 12345);

// The fold nnU-Net trains for `fold` (its do_split): fold < folds.size() is that fold; a larger one is a random
// 80:20 split of the sorted keys drawn with RandomState(12345 + fold); "all" (fold -1) trains and validates on
// every case.
Fold nnunet_fold(const std::vector<Fold>& folds, std::vector<std::string> case_keys, int fold);

// nnU-Net's splits_final.json (a list of {"train": [...], "val": [...]}); throws Error naming the file.
std::vector<Fold> read_splits_file(const std::string& path);

// The samples of the named cases: validation samples (copy 0 only with `val_first_copy_only`) and training samples.
// A case of `fold` the samples do not hold is an Error naming it and `where`.
Split split_by_fold(const std::vector<store::SampleRef>& samples, const Fold& fold, bool val_first_copy_only, const std::string& where);

}  // namespace segscale::train
