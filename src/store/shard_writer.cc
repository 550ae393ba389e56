#include "store/shard_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/file.h"
#include "io/tar.h"
#include "storage/storage.h"
#include "util/crc32c.h"
#include "util/error.h"
#include "util/fault.h"

namespace segscale::store {
namespace fs = std::filesystem;

ShardWriter::ShardWriter(const fs::path& store, std::uint32_t shard)
    : store_(store), storage_(storage::open_storage(store.string())), shard_(shard) {
  tmp_ = storage_->temp_path(shard_file(shard));
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw error_at(tmp_.string(), std::string("cannot create shard: ") + std::strerror(errno));
}

ShardWriter::~ShardWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void ShardWriter::write(std::span<const std::uint8_t> b) {
  std::size_t done = 0;
  while (done < b.size()) {
    ssize_t w = fault_fail("io.write_enospc") ? (errno = ENOSPC, -1) : ::write(fd_, b.data() + done, b.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw error_at(storage_->where(shard_file(shard_)), std::string("write failed: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(w);
  }
  pos_ += b.size();
}

void ShardWriter::add(const std::string& key, const std::string& case_key, int copy, const std::vector<Member>& members) {
  static const std::uint8_t kZeros[io::kTarBlock] = {};
  SampleRef ref;
  ref.key = key;
  ref.case_key = case_key;
  ref.copy = copy;
  ref.shard = shard_;
  for (const auto& m : members) {
    write(io::tar_header(key + "." + m.suffix, m.bytes.size()));
    MemberRef r{pos_, m.bytes.size(), crc32c(m.bytes.data(), m.bytes.size())};
    write(m.bytes);
    write({kZeros, io::tar_padding(m.bytes.size())});
    if (m.suffix == "json") ref.json = r;
    else if (m.suffix == "image.npy") ref.image = r;
    else if (m.suffix == "label.npy") ref.label = r;
  }
  samples_.push_back(ref);
}

void ShardWriter::rollback(const Mark& m) {
  if (::ftruncate(fd_, static_cast<off_t>(m.pos)) != 0 || ::lseek(fd_, static_cast<off_t>(m.pos), SEEK_SET) < 0)
    throw error_at(storage_->where(shard_file(shard_)), std::string("cannot roll back a failed case: ") + std::strerror(errno));
  pos_ = m.pos;
  samples_.resize(m.samples);
}

void ShardWriter::skip(const std::string& case_key, const std::string& reason) { skipped_.push_back({case_key, reason}); }

std::uint64_t ShardWriter::commit() {
  static const std::uint8_t kEnd[2 * io::kTarBlock] = {};
  write(kEnd);
  fault_point("shard.before_rename");  // a kill here leaves only a temporary file
  const std::string final_name = shard_file(shard_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw error_at(storage_->where(final_name), std::string("close failed: ") + std::strerror(errno));
  }
  fd_ = -1;
  committed_ = true;  // commit_temp removes the temporary whatever happens
  storage_->commit_temp(tmp_, final_name);  // local: fsync + rename; S3: one PUT or a multipart upload
  fault_point("shard.before_sidecar");  // a kill here leaves a shard without its sidecar: redone on rerun
  nlohmann::json side;
  side["format_version"] = kFormatVersion;
  side["shard"] = shard_file(shard_);
  side["bytes"] = pos_;
  side["samples"] = nlohmann::json::array();
  for (const auto& s : samples_) side["samples"].push_back(to_json(s));
  side["skipped"] = nlohmann::json::array();
  for (const auto& s : skipped_) side["skipped"].push_back({{"case", s.case_key}, {"reason", s.reason}});
  storage_->write_atomic(sidecar_file(shard_), side.dump() + "\n");
  fault_point("shard.committed");
  return pos_;
}

bool shard_complete(const fs::path& store, std::uint32_t shard) {
  auto st = storage::open_storage(store.string());
  return st->exists(sidecar_file(shard)) && st->exists(shard_file(shard));
}

}  // namespace segscale::store
