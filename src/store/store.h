#pragma once
// Finalising, reading and verifying a sample store (see format.h for the layout).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "io/file.h"
#include "store/format.h"

namespace segscale::storage {
class Storage;
}

namespace segscale::store {

// settings.json: written once per store, then only compared.
struct Settings {
  nlohmann::json json;             // the whole file
  std::vector<std::string> cases;  // sorted case keys
  std::uint32_t cases_per_shard = 1;
  std::uint32_t shard_count() const;
  std::vector<std::string> cases_of(std::uint32_t shard) const;
};
Settings read_settings(const std::filesystem::path& store);
// Writes settings.json if absent, or if present but no shard's sidecar exists yet (nothing was made with the old
// settings). Otherwise it must hold exactly `json`, else Error naming the first setting that differs and both values.
void write_or_check_settings(const std::filesystem::path& store, const nlohmann::json& json);

// Shards without a sidecar yet.
std::vector<std::uint32_t> missing_shards(const std::filesystem::path& store, const Settings& s);

// What verify_store would flag in a committed shard, checked against its own sidecar: the shard's size, then
// every member's tar header, name, offset, size, CRC-32C and npy header. Empty when the shard is sound; a missing
// or malformed sidecar or shard is a problem too. Reads the whole shard.
std::vector<std::string> shard_problems(const std::filesystem::path& store, std::uint32_t shard);

// Merges every sidecar into index.json and writes manifest.json (counts, skipped cases, settings, version).
// Throws Error naming the missing shards if any share has not finished. Idempotent: the same shards give
// byte-identical files, so concurrent finalisers are harmless. Also removes stale temporary files.
nlohmann::json finalize_store(const std::filesystem::path& store);

class StoreReader {
 public:
  // Opens a finalised store. Throws Error naming the file for a missing or malformed manifest or index, and
  // naming the path for a folder that does not exist ("no such folder"), a dataset ("this is a dataset, not a
  // sample store: run `segscale prep` ... first, or use --data") or a store whose shares have not all finished.
  // `store` is a folder or an s3:// URL (see storage/storage.h).
  explicit StoreReader(const std::filesystem::path& store);
  ~StoreReader();
  const nlohmann::json& manifest() const { return manifest_; }
  const std::vector<SampleRef>& samples() const { return samples_; }
  storage::Storage& storage() const { return *storage_; }

  struct Raw {
    io::Bytes buffer;  // the sample's bytes from its first member to its last
    std::span<const std::uint8_t> json, image, label;
  };
  // Reads sample i with one ranged read (thread-safe: a pread, or a ranged GET on S3). Throws Error naming the shard, sample and member for a
  // short read or (check_crc) a checksum mismatch.
  Raw read(std::size_t i, bool check_crc = true) const;
  // The same into `r`, reusing its buffer's capacity (a loader thread's reads allocate once).
  void read_into(std::size_t i, Raw& r, bool check_crc = true) const;
  // Sample i's JSON member alone (one small ranged read), its CRC-32C checked.
  io::Bytes read_json_member(std::size_t i) const;

 private:
  std::filesystem::path dir_;
  std::unique_ptr<storage::Storage> storage_;
  nlohmann::json manifest_;
  std::vector<SampleRef> samples_;
};

// Checks every shard member by member: tar structure, names and sizes against the index, CRC-32C, npy headers
// and shapes, and counts against the manifest. Returns one line per problem ("shard-000001.tar: member
// X.image.npy: CRC-32C mismatch ..."); empty when the store is sound. Rerunning the prep that made the store
// redoes every shard with a problem (see shard_problems).
std::vector<std::string> verify_store(const std::filesystem::path& store);

}  // namespace segscale::store
