#include "prep/share.h"

#include "transforms/rng.h"

namespace segscale::prep {

int share_of(const std::string& key, int count) {
  return static_cast<int>(transforms::stable_hash(key) % static_cast<std::uint64_t>(count));
}

}  // namespace segscale::prep
