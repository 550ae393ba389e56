#pragma once
// Which share owns a shard: the split of prep's work that makes every share's output disjoint. The share
// this process runs comes from env/share.h.
#include <string>

#include "env/share.h"

namespace segscale::prep {

using env::Share;

// The share that owns `key`: stable 64-bit hash of the key, modulo the share count.
int share_of(const std::string& key, int count);

}  // namespace segscale::prep
