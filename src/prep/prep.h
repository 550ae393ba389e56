#pragma once
// segscale prep: runs the transform engine over a dataset and writes a sample store, in shares that any
// number of processes or machines can run at once, resumable after a kill, byte-identical however split.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "prep/share.h"

namespace segscale::prep {

struct PrepOptions {
  std::filesystem::path data, out;
  bool cache = false;   // deterministic stage only, one entry per case (online augmentation by the loader)
  int copies = 0;       // else: this many augmented copies per case (the case study: 100)
  int workers = 0;      // threads, 0 = all cores
  std::uint64_t seed = 0;
  std::filesystem::path pipeline;  // empty: the case study's chain
  std::string label_map;           // empty: the pipeline file's, else the dataset's numbering (blog / brats21 / brats23)
  std::string image_dtype = "float32";  // or "float16"
  Share share;
  bool skip_bad = false;
  std::uint64_t shard_bytes = 1ull << 30;  // target shard size
  bool quiet = false;
  // nnU-Net's preprocessing instead of a transform chain (settings mode "nnunet", store/nnunet_sample.h): its
  // plans file (segscale plan --out, or nnU-Net's own), the configuration, and dataset.json (default: beside the
  // plans file, else the dataset's).
  std::filesystem::path plans;
  std::string configuration = "3d_fullres";
  std::filesystem::path dataset_json;
};

struct PrepResult {
  int shards_written = 0, shards_already_done = 0, shards_total = 0, shards_in_share = 0;
  int shards_repaired = 0;  // committed shards that failed their check and were redone (counted in shards_written)
  std::uint64_t samples = 0, bytes = 0, cases = 0;
  double seconds = 0;
  bool finalized = false;
  nlohmann::json manifest;  // when finalized
};

// Throws UsageError for bad options, Error naming the case and reason for a bad case (unless skip_bad; a case
// lacking one of its files is a bad case too: without skip_bad prep stops before any work), Error for I/O
// problems. SIGINT/SIGTERM while it runs: Stopped (util/stop_signal.h) once every worker has finished its
// current case; the shards being written are dropped with their temporary files. A second signal kills it.
// Shards finished before a failure stay on disk and count as done on the next run;
// committed shards that store::shard_problems flags (flipped bytes, truncation, a lost file) are redone.
PrepResult run_prep(const PrepOptions& options);

}  // namespace segscale::prep
