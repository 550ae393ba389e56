#include "train/run_sync.h"

#include "io/file.h"
#include "train/options.h"
#include "util/error.h"

namespace segscale::train {
namespace fs = std::filesystem;

namespace {
// Size and modification time: every run file is replaced by a rename when rewritten, so a new write shows as
// a new time without reading the (large) checkpoint again at every push.
RunSync::Stamp stamp(const fs::path& p) { return {fs::file_size(p), fs::last_write_time(p).time_since_epoch().count()}; }
}  // namespace

RunSync::RunSync(const std::string& remote, fs::path staging)
    : remote_(remote), staging_(std::move(staging)), store_(storage::open_storage(remote)) {}

fs::path RunSync::default_staging(const std::string& remote) {
  return storage::temp_root() / "segscale-runs" / storage::url_as_relative_path(remote);
}

std::string RunSync::remote_run_file() {
  for (const char* name : kRunFiles)
    if (store_->exists(name)) return store_->where(name);
  return {};
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
    pushed_[name] = stamp(staging_ / name);
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
    const Stamp now = stamp(local);
    if (auto it = pushed_.find(name); it != pushed_.end() && it->second == now) continue;
    const io::Bytes b = io::read_file(local);
    store_->write_atomic(name, std::span<const std::uint8_t>(b.data(), b.size()));
    pushed_[name] = now;
    ++n;
  }
  return n;
}

void RunSync::clear() {
  for (const char* name : kRunFiles) store_->remove(name);
  pushed_.clear();
}

}  // namespace segscale::train
