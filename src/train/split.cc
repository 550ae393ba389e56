#include "train/split.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "transforms/rng.h"

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

}  // namespace segscale::train
