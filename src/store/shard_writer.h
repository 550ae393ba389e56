#pragma once
// Writes one shard: members stream into a temporary file (in the store folder, or a local spool for an s3://
// store); commit() ends the archive and publishes it under the shard's name at once (fsync + rename, or one
// S3 PUT / multipart upload), then writes the sidecar index the same way. A shard whose sidecar
// exists is complete. Destroying an uncommitted writer removes its temporary file, so a failure or a crash
// never leaves a half-written shard under a shard's name.
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "store/format.h"

namespace segscale::storage {
class Storage;
}

namespace segscale::store {

struct Member {
  std::string suffix;  // "json", "image.npy", "label.npy"
  std::span<const std::uint8_t> bytes;
};

class ShardWriter {
 public:
  // `store` is a folder or an s3:// URL.
  ShardWriter(const std::filesystem::path& store, std::uint32_t shard);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends one sample's members (json, image.npy, label.npy, in that order). Throws Error on I/O failure.
  void add(const std::string& key, const std::string& case_key, int copy, const std::vector<Member>& members);
  // A point to roll back to: a case that fails half-way through its copies is taken out whole.
  struct Mark {
    std::uint64_t pos;
    std::size_t samples;
  };
  Mark mark() const { return {pos_, samples_.size()}; }
  void rollback(const Mark& m);
  // Records a case left out (with --skip-bad), so the manifest can name it.
  void skip(const std::string& case_key, const std::string& reason);
  // Finishes the shard. Returns the bytes written.
  std::uint64_t commit();

 private:
  void write(std::span<const std::uint8_t> b);
  std::filesystem::path store_, tmp_;
  std::unique_ptr<storage::Storage> storage_;
  std::uint32_t shard_;
  int fd_ = -1;
  std::uint64_t pos_ = 0;
  std::vector<SampleRef> samples_;
  std::vector<SkippedCase> skipped_;
  bool committed_ = false;
};

// True when the shard's sidecar (written last) exists.
bool shard_complete(const std::filesystem::path& store, std::uint32_t shard);

}  // namespace segscale::store
