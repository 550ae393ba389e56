#pragma once
// Small synthetic stores for loader tests: `cases` phantoms of 30x26x22 voxels prepped with `pipeline` as
// --cache stores "f32" (float32) and "f16" (float16) and as a --copies store "copies" (2 copies), in `dir`.
#include <filesystem>
#include <fstream>
#include <string>

#include "data/synth.h"
#include "prep/prep.h"
#include "transforms/pipeline.h"

namespace segscale::testing {

inline void make_test_stores(const std::filesystem::path& dir, int cases, const transforms::Pipeline& pipeline) {
  data::SynthOptions so;
  so.out = dir / "ds";
  so.cases = cases;
  so.shape = {30, 26, 22};
  so.threads = 1;
  so.quiet = true;
  data::synthesize_dataset(so);
  const std::filesystem::path pipe = dir / "pipe.json";
  std::ofstream(pipe) << pipeline.to_json().dump();
  for (const std::string name : {"f32", "f16", "copies"}) {
    prep::PrepOptions po;
    po.data = so.out;
    po.out = dir / name;
    po.cache = name != "copies";
    po.copies = po.cache ? 0 : 2;
    po.workers = 1;
    po.pipeline = pipe;
    po.image_dtype = name == "f16" ? "float16" : "float32";
    po.quiet = true;
    prep::run_prep(po);
  }
}

}  // namespace segscale::testing
