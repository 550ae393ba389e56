#pragma once
// A run folder whose home is not the local disk (`train --out s3://bucket/run`): training writes into a local
// staging folder as always, and RunSync mirrors that folder's run files (kRunFiles) to the remote. libtorch-free.
//   pull():  before training, on every rank: the run files the remote holds are copied into staging, so
//            --resume / --auto-resume on a fresh machine continue from the remote checkpoint.
//   push():  rank 0, after each checkpoint and at the end: every run file rewritten since the last push is
//            written to the remote (one object each, atomically; multipart above the part size). A file is
//            unchanged when its size and modification time are those recorded and that time is older than the
//            recording by more than a timestamp's resolution; otherwise (a rewrite within the same clock tick
//            keeps size and time: "racy" as git calls it) its CRC-32C decides.
//   clear(): --overwrite: removes the remote run files, so none of the old run survives the new one.
// The staging folder defaults to $TMPDIR/segscale-runs/<bucket>/<prefix> (stable: a rerun on the same machine
// reuses it). Errors name the remote URL.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "io/file.h"

#include "storage/storage.h"

namespace segscale::train {

class RunSync {
 public:
  struct Stamp {  // a run file as last pushed or pulled
    std::uintmax_t size = 0;
    std::filesystem::file_time_type modified;
    std::uint32_t crc = 0;                      // CRC-32C of its bytes
    std::filesystem::file_time_type recorded;  // when size, time and CRC were taken
  };
  RunSync(const std::string& remote, std::filesystem::path staging);

  static std::filesystem::path default_staging(const std::string& remote);
  const std::filesystem::path& staging() const { return staging_; }
  const std::string& remote() const { return remote_; }

  // The address of the first run file the remote holds, or "" when it holds none or only those of a start that
  // never trained (holds_a_run).
  std::string remote_run_file();
  bool remote_has(const std::string& name) { return store_->exists(name); }
  std::size_t pull();
  std::size_t push();
  void clear();

 private:
  std::string remote_;
  std::filesystem::path staging_;
  std::unique_ptr<storage::Storage> store_;
  Stamp look(const std::string& name) const;  // size and times; crc left 0
  void record(const std::string& name, Stamp stamp, const io::Bytes& bytes);  // as pushed or pulled, with its CRC
  bool unchanged(const std::string& name, const Stamp& now, io::Bytes& bytes);

  std::map<std::string, Stamp> pushed_;  // name -> the local file as last pushed or pulled
  bool root_made_ = false;
};

}  // namespace segscale::train
