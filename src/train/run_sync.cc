#include "train/run_sync.h"

#include <cstdlib>

#include "io/file.h"
#include "train/options.h"
#include "util/crc32c.h"
#include "util/error.h"

namespace segscale::train {
namespace fs = std::filesystem;

namespace {
std::uint64_t fingerprint(const io::Bytes& b) { return (static_cast<std::uint64_t>(b.size()) << 32) ^ crc32c(b.data(), b.size()); }
}  // namespace

RunSync::RunSync(const std::string& remote, fs::path staging)
    : remote_(remote), staging_(std::move(staging)), store_(storage::open_storage(remote)) {}

fs::path RunSync::default_staging(const std::string& remote) {
  const char* tmp = std::getenv("TMPDIR");
  fs::path dir = fs::path(tmp && *tmp ? tmp : "/tmp") / "segscale-runs";
  std::string rest = remote.substr(remote.find("://") + 3);
  for (const auto& part : fs::path(rest))  // bucket/prefix, without "." or ".." segments
    if (part != "." && part != ".." && part != "/" && !part.empty()) dir /= part;
  return dir;
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
    pushed_[name] = fingerprint(b);
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
    const io::Bytes b = io::read_file(local);
    const std::uint64_t f = fingerprint(b);
    if (auto it = pushed_.find(name); it != pushed_.end() && it->second == f) continue;
    store_->write_atomic(name, std::span<const std::uint8_t>(b.data(), b.size()));
    pushed_[name] = f;
    ++n;
  }
  return n;
}

void RunSync::clear() {
  for (const char* name : kRunFiles) store_->remove(name);
  pushed_.clear();
}

}  // namespace segscale::train
