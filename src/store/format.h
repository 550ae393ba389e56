#pragma once
// The sample store on disk (format version 1):
//   STORE/settings.json          what the store is made of: pipeline, seed, mode, dtypes, the sorted case list
//                                and how cases group into shards. Written by the first share; every share checks
//                                it matches, so no two settings ever mix in one store.
//   STORE/shard-NNNNNN.tar       POSIX tar (WebDataset): per sample <key>.json, <key>.image.npy, <key>.label.npy
//   STORE/shard-NNNNNN.idx.json  the shard's sidecar: every member's offset, size and CRC-32C; skipped cases
//   STORE/index.json             all sidecars merged (written by finalize)
//   STORE/manifest.json          format version, settings, counts, skipped cases, tool version (finalize)
// Shard NNNNNN holds cases [N*K, (N+1)*K) of the sorted case list (K = cases_per_shard), so which file a sample
// lands in is a pure function of its case key and the settings, whoever writes it.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace segscale::store {

inline constexpr int kFormatVersion = 1;

std::string shard_file(std::uint32_t shard);     // "shard-000003.tar"
std::string sidecar_file(std::uint32_t shard);   // "shard-000003.idx.json"

struct MemberRef {
  std::uint64_t offset = 0;  // of the member's data (past its tar header) within the shard
  std::uint64_t size = 0;
  std::uint32_t crc32c = 0;
};

struct SampleRef {
  std::string key;       // WebDataset key: "<case>" (cache mode) or "<case>_<copy:04d>"
  std::string case_key;
  int copy = 0;
  std::uint32_t shard = 0;
  MemberRef json, image, label;
};

struct SkippedCase {
  std::string case_key;
  std::string reason;
};

nlohmann::json to_json(const SampleRef& s);
SampleRef sample_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace segscale::store
