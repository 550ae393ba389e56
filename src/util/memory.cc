#include "util/memory.h"

#include <malloc.h>

namespace segscale {

void tune_allocator_for_volumes() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // blocks up to 1 GiB come from the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // and stay there between cases
}

}  // namespace segscale
