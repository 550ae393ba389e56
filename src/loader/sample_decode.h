#pragma once
// A stored sample back into the transform engine's types: the image as a float32 Volume (float16 widened),
// the TC/WT/ET channels as a 3-channel uint8 grid, the affine and draws from its JSON. libtorch-free.
#include <string>

#include "store/store.h"
#include "transforms/pipeline.h"
#include "transforms/window_stage.h"

namespace segscale::loader {

// The sample's arrays as views into `raw` (validated as decode_sample does, nothing copied): what
// transforms::run_window reads.
transforms::StoredArrays stored_arrays(const store::StoreReader::Raw& raw, const std::string& where);

// Throws Error naming `where` (shard and sample) for malformed members or inconsistent shapes.
transforms::Sample decode_sample(const store::StoreReader::Raw& raw, const std::string& where);

}  // namespace segscale::loader
