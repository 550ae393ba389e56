#include "train/run_sync.h"

#include <chrono>

#include "io/file.h"
#include "train/options.h"
#include "util/crc32c.h"
#include "util/error.h"

namespace segscale::train {
namespace fs = std::filesystem;

namespace {
// File times come from the kernel's coarse clock (a few ms per tick; seconds on some file systems): a file
// rewritten with the same size within that resolution of its recording keeps its stamp.
constexpr auto kRacyWindow = std::chrono::seconds(2);
}  // namespace

// Size and time are taken before the bytes are read: a rewrite in between shows as a new time at the next push.
RunSync::Stamp RunSync::look(const std::string& name) const {
  const fs::path local = staging_ / name;
  return Stamp{fs::file_size(local), fs::last_write_time(local), 0, fs::file_time_type::clock::now()};
}

void RunSync::record(const std::string& name, Stamp stamp, const io::Bytes& bytes) {
  stamp.crc = crc32c(bytes.data(), bytes.size());
  pushed_[name] = stamp;
}

// Cheap unless racy: the (large) checkpoint is read again only when its time cannot tell. `bytes` receives
// the file's contents whenever they were read.
bool RunSync::unchanged(const std::string& name, const Stamp& now, io::Bytes& bytes) {
  const auto it = pushed_.find(name);
  if (it == pushed_.end()) return false;
  Stamp& was = it->second;
  if (now.size != was.size || now.modified != was.modified) return false;
  if (now.modified < was.recorded - kRacyWindow) return true;
  bytes = io::read_file(staging_ / name);
  if (crc32c(bytes.data(), bytes.size()) != was.crc) return false;
  was.recorded = now.recorded;  // the next look trusts the time once it has aged
  return true;
}

RunSync::RunSync(const std::string& remote, fs::path staging)
    : remote_(remote), staging_(std::move(staging)), store_(storage::open_storage(remote)) {}

fs::path RunSync::default_staging(const std::string& remote) {
  return storage::temp_root() / "segscale-runs" / storage::url_as_relative_path(remote);
}

std::string RunSync::remote_run_file() {
  std::string first;
  for (const char* name : kRunFiles)
    if (first.empty() && store_->exists(name)) first = store_->where(name);
  if (first.empty()) return {};
  bool weights = false;
  for (const char* name : kWeightFiles) weights = weights || store_->exists(name);
  std::string metrics;
  if (!weights && store_->exists("metrics.jsonl")) {
    const io::Bytes b = store_->read("metrics.jsonl");
    metrics.assign(b.begin(), b.end());
  }
  return holds_a_run(weights, metrics) ? first : std::string();  // a start that never trained is no run
}

std::size_t RunSync::pull() {
  std::error_code ec;
  fs::create_directories(staging_, ec);
  if (ec) throw error_at(staging_.string(), "cannot create the staging folder of " + remote_ + ": " + ec.message());
  std::size_t n = 0;
  for (const char* name : kRunFiles) {
    if (!store_->exists(name)) {
      fs::remove(staging_ / name, ec);  // a stale local copy must not resurrect what the remote does not hold
      continue;
    }
    const io::Bytes b = store_->read(name);
    io::write_file_atomic(staging_ / name, std::span<const std::uint8_t>(b.data(), b.size()));
    record(name, look(name), b);
    ++n;
  }
  return n;
}

std::size_t RunSync::push() {
  if (!root_made_) {  // a folder is created; S3 checks that the bucket is there
    store_->make_root();
    root_made_ = true;
  }
  std::size_t n = 0;
  for (const char* name : kRunFiles) {
    const fs::path local = staging_ / name;
    if (!fs::exists(local)) continue;
    const Stamp now = look(name);
    io::Bytes b;
    if (unchanged(name, now, b)) continue;
    if (b.empty()) b = io::read_file(local);
    store_->write_atomic(name, std::span<const std::uint8_t>(b.data(), b.size()));
    record(name, now, b);
    ++n;
  }
  return n;
}

void RunSync::clear() {
  for (const char* name : kRunFiles) store_->remove(name);
  pushed_.clear();
}

}  // namespace segscale::train
