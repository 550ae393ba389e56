#include "train/split.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "transforms/rng.h"
#include "util/error.h"

namespace segscale::train {

Split split_by_case(const std::vector<store::SampleRef>& samples, double fraction, std::uint64_t seed, bool val_first_copy_only) {
  std::set<std::string> cases;
  for (const auto& s : samples) cases.insert(s.case_key);
  std::vector<std::pair<std::uint64_t, std::string>> ranked;
  for (const auto& c : cases) ranked.emplace_back(transforms::stable_hash(std::to_string(seed) + "/" + c), c);
  std::sort(ranked.begin(), ranked.end());
  std::size_t n_val = 0;
  if (fraction > 0 && cases.size() >= 2)
    n_val = std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(fraction * static_cast<double>(cases.size()))), 1, cases.size() - 1);
  Split s;
  std::set<std::string> val;
  for (std::size_t i = 0; i < n_val; ++i) val.insert(ranked[i].second);
  s.val_cases.assign(val.begin(), val.end());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (!val.count(samples[i].case_key)) s.train.push_back(i);
    else if (!val_first_copy_only || samples[i].copy == 0) s.val.push_back(i);
  }
  return s;
}

namespace {

// numpy's legacy RandomState(seed).shuffle(arange(n)) (its _shuffle_raw: Fisher-Yates from the end, random_interval).
std::vector<std::size_t> legacy_shuffled_range(std::size_t n, std::uint32_t seed) {
  std::vector<std::size_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = i;
  std::mt19937 g(seed);
  for (std::size_t i = n; i-- > 1;)
    std::swap(v[i], v[static_cast<std::size_t>(transforms::legacy_randint(g, 0, static_cast<std::int64_t>(i) + 1))]);
  return v;
}

}  // namespace

std::vector<Fold> nnunet_kfold(std::vector<std::string> keys, int n_splits, std::uint32_t seed) {
  std::sort(keys.begin(), keys.end());
  const std::size_t n = keys.size(), k = static_cast<std::size_t>(n_splits);
  if (n_splits < 2 || n < k)
    throw Error(fmt::format("{} cases cannot be split into {} folds (nnU-Net's cross-validation needs at least one case per fold)", n, n_splits));
  const std::vector<std::size_t> order = legacy_shuffled_range(n, seed);
  std::vector<Fold> folds;
  std::size_t start = 0;
  for (std::size_t f = 0; f < k; ++f) {
    const std::size_t size = n / k + (f < n % k ? 1 : 0);
    std::vector<bool> is_val(n, false);
    for (std::size_t i = start; i < start + size; ++i) is_val[order[i]] = true;
    Fold fold;
    for (std::size_t i = 0; i < n; ++i) (is_val[i] ? fold.val : fold.train).push_back(keys[i]);
    folds.push_back(std::move(fold));
    start += size;
  }
  return folds;
}

Fold nnunet_fold(const std::vector<Fold>& folds, std::vector<std::string> keys, int fold) {
  std::sort(keys.begin(), keys.end());
  if (fold < 0) return {keys, keys};
  if (static_cast<std::size_t>(fold) < folds.size()) return folds[static_cast<std::size_t>(fold)];
  // rnd.choice(len(keys), int(len(keys) * 0.8), replace=False) = permutation(len)[:k]; the rest, in order, validate.
  const std::vector<std::size_t> order = legacy_shuffled_range(keys.size(), 12345u + static_cast<std::uint32_t>(fold));
  const std::size_t n_train = static_cast<std::size_t>(static_cast<double>(keys.size()) * 0.8);
  Fold f;
  std::vector<bool> is_train(keys.size(), false);
  for (std::size_t i = 0; i < n_train; ++i) {
    f.train.push_back(keys[order[i]]);
    is_train[order[i]] = true;
  }
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (!is_train[i]) f.val.push_back(keys[i]);
  return f;
}

std::vector<Fold> read_splits_file(const std::string& path) {
  const nlohmann::json j = io::read_json_file(path);
  if (!j.is_array() || j.empty()) throw error_at(path, "not a splits file: nnU-Net's splits_final.json is a list of {\"train\": [...], \"val\": [...]}");
  std::vector<Fold> folds;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& f = j[i];
    try {
      folds.push_back({f.at("train").get<std::vector<std::string>>(), f.at("val").get<std::vector<std::string>>()});
    } catch (const nlohmann::json::exception&) {
      throw error_at(path, fmt::format("fold {} is not {{\"train\": [case, ...], \"val\": [case, ...]}}", i));
    }
  }
  return folds;
}

Split split_by_fold(const std::vector<store::SampleRef>& samples, const Fold& fold, bool val_first_copy_only, const std::string& where) {
  std::set<std::string> present;
  for (const auto& s : samples) present.insert(s.case_key);
  for (const auto* list : {&fold.train, &fold.val})
    for (const auto& c : *list)
      if (!present.count(c)) throw error_at(where, fmt::format("case {} of the fold is not in the training data", c));
  const std::set<std::string> train(fold.train.begin(), fold.train.end()), val(fold.val.begin(), fold.val.end());
  Split s;
  s.val_cases.assign(val.begin(), val.end());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (train.count(samples[i].case_key)) s.train.push_back(i);
    if (val.count(samples[i].case_key) && (!val_first_copy_only || samples[i].copy == 0)) s.val.push_back(i);
  }
  return s;
}

}  // namespace segscale::train
