#pragma once
// Where the bytes live: "a place that holds named files", after LevelDB's Env. prep, the store, verify,
// inspect and train's loader read and write through a Storage and never learn which one they got.
//
// A Storage is rooted at a folder ("/data/store") or an S3 prefix ("s3://bucket/prefix"). Names are relative
// to the root and use '/' between parts ("shard-000001.tar", "case_001/t1.nii.gz"). Every method is
// thread-safe. Every failure throws segscale::Error "<url of the object>: <problem>" on one line; messages
// never hold a secret (keys, tokens, signatures).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/file.h"

namespace segscale::storage {

class Storage {
 public:
  virtual ~Storage() = default;

  // The root as a user wrote it (a path or an s3:// URL), and the address of `name` under it, for messages.
  virtual std::string root() const = 0;
  virtual std::string where(const std::string& name) const = 0;
  // True for the local file system.
  virtual bool is_local() const = 0;

  // The whole object. Throws Error if it is absent ("no such object" / the OS reason).
  virtual io::Bytes read(const std::string& name) = 0;
  // Bytes [offset, offset + size) of the object. Throws Error on a short read (object shorter than that).
  virtual io::Bytes read_range(const std::string& name, std::uint64_t offset, std::uint64_t size) = 0;
  // The same bytes into `out`, resized: where a storage can, it reuses out's capacity, so a loop of reads
  // into one buffer allocates (and page-faults) once. The default hands over read_range's buffer.
  virtual void read_range_into(const std::string& name, std::uint64_t offset, std::uint64_t size, io::Bytes& out) {
    out = read_range(name, offset, size);
  }
  // The object's size in bytes, or nullopt if it does not exist.
  virtual std::optional<std::uint64_t> size(const std::string& name) = 0;
  bool exists(const std::string& name) { return size(name).has_value(); }
  // Names of the objects under the root that start with `prefix` (all of them, however many), sorted.
  // The local file system descends into folders; S3 lists keys.
  virtual std::vector<std::string> list(const std::string& prefix) = 0;

  // Creates the root if that means anything (a folder); S3 checks that the bucket is reachable.
  virtual void make_root() = 0;
  // Writes the object so that readers see the old one or the complete new one, never a part.
  virtual void write_atomic(const std::string& name, std::span<const std::uint8_t> data) = 0;
  void write_atomic(const std::string& name, const std::string& text) {
    write_atomic(name, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  }
  // Large objects are written in two steps: the caller writes a local file at temp_path(name), then
  // commit_temp() publishes it under `name` at once (local: fsync + rename into place; S3: one PUT, or a
  // multipart upload above the part size that is completed only when every part is in). A multipart upload
  // that failed is left unfinished and resumed by the next commit_temp of the same name: parts already there
  // with the same bytes (MD5) are kept. The temporary is gone afterwards, whether commit_temp succeeded or threw.
  virtual std::filesystem::path temp_path(const std::string& name) = 0;
  virtual void commit_temp(const std::filesystem::path& temp, const std::string& name) = 0;
  // Removes the object; absent is not an error.
  virtual void remove(const std::string& name) = 0;
  // Drops what killed writers left behind under the root and returns how many: temporary files
  // ("." NAME ".tmp.*") on disk, unfinished multipart uploads on S3. Only when no writer is running, except
  // writers of the names in `keep`, whose temporaries are left alone (finalisers that run side by side: the last
  // shares of a Slurm array can finish together, and each writes the same index and manifest).
  virtual std::size_t remove_leftovers(const std::vector<std::string>& keep) = 0;
};

// True for "s3://..." (the only remote scheme so far).
bool is_url(const std::string& path_or_url);

// The storage for a folder path or an s3://bucket/prefix URL. For S3, credentials, region and endpoint come
// from the environment as the AWS SDKs take them (see s3_storage.h). Throws UsageError for a malformed URL.
std::unique_ptr<Storage> open_storage(const std::string& path_or_url);

// Splits "s3://b/store/x.json" style locations into (parent, file name): the storage root and the name.
// For a path, parent_path() and filename().
std::pair<std::string, std::string> split_parent(const std::string& path_or_url);

// Where segscale keeps local copies and spools of remote objects: $TMPDIR, else /tmp.
std::filesystem::path temp_root();
// "s3://bucket/a/b" as the relative path "bucket/a/b", without "." or ".." segments: the subfolder of a
// local copy of that location.
std::filesystem::path url_as_relative_path(const std::string& url);

// Copies every object under `url` to the folder `dir` (names kept), skipping files already there with the
// same size. For reading remote datasets with code that needs a file system. Returns the number copied.
std::size_t mirror_to_folder(Storage& from, const std::filesystem::path& dir);

}  // namespace segscale::storage
