#include "storage/local_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace segscale::storage {
namespace fs = std::filesystem;

LocalStorage::LocalStorage(fs::path root) : root_(std::move(root)) {}

LocalStorage::~LocalStorage() {
  for (auto& [name, f] : fds_) ::close(f);
}

int LocalStorage::fd(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fds_.find(name);
  if (it != fds_.end()) return it->second;
  const fs::path p = root_ / name;
  int f = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (f < 0) throw error_at(p.string(), std::string("cannot open: ") + std::strerror(errno));
  fds_[name] = f;
  return f;
}

io::Bytes LocalStorage::read(const std::string& name) { return io::read_file(root_ / name); }

io::Bytes LocalStorage::read_range(const std::string& name, std::uint64_t offset, std::uint64_t size) {
  io::Bytes out;
  read_range_into(name, offset, size, out);
  return out;
}

void LocalStorage::read_range_into(const std::string& name, std::uint64_t offset, std::uint64_t size, io::Bytes& out) {
  out.resize(size);
  const int f = fd(name);
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::pread(f, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw error_at(where(name), std::string("read failed: ") + std::strerror(errno));
    if (n == 0) throw error_at(where(name), fmt::format("short read ({} of {} bytes at offset {})", got, out.size(), offset));
    got += static_cast<std::size_t>(n);
  }
}

std::optional<std::uint64_t> LocalStorage::size(const std::string& name) {
  std::error_code ec;
  const fs::path p = root_ / name;
  auto st = fs::status(p, ec);
  if (ec || !fs::is_regular_file(st)) return std::nullopt;
  auto n = fs::file_size(p, ec);
  if (ec) return std::nullopt;
  return n;
}

std::vector<std::string> LocalStorage::list(const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    // Lexical and non-throwing: another process's temporary may vanish between the listing and the look.
    std::error_code gone;
    if (!it->is_regular_file(gone)) continue;
    std::string rel = it->path().lexically_relative(root_).generic_string();
    if (rel.starts_with(prefix)) out.push_back(std::move(rel));
  }
  if (ec) throw error_at(root_.string(), "cannot list: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

void LocalStorage::make_root() {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw error_at(root_.string(), "cannot create folder: " + ec.message());
}

void LocalStorage::write_atomic(const std::string& name, std::span<const std::uint8_t> data) {
  io::write_file_atomic(root_ / name, data);
}

fs::path LocalStorage::temp_path(const std::string& name) {
  const fs::path p = root_ / name;
  return p.parent_path() / io::temp_name(p.filename().string());
}

void LocalStorage::commit_temp(const fs::path& temp, const std::string& name) {
  const fs::path final_path = root_ / name;
  int f = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
  if (f < 0 || ::fsync(f) != 0) {
    std::string reason = std::strerror(errno);
    if (f >= 0) ::close(f);
    ::unlink(temp.c_str());
    throw error_at(final_path.string(), "fsync failed: " + reason);
  }
  ::close(f);
  if (::rename(temp.c_str(), final_path.c_str()) != 0) {
    std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    throw error_at(final_path.string(), "cannot rename into place: " + reason);
  }
  int d = ::open(final_path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    ::fsync(d);  // best effort: some file systems refuse directory fsync
    ::close(d);
  }
}

void LocalStorage::remove(const std::string& name) {
  std::error_code ec;
  fs::remove(root_ / name, ec);
  if (ec) throw error_at(where(name), "cannot remove: " + ec.message());
}

std::size_t LocalStorage::remove_leftovers(const std::vector<std::string>& keep) {
  auto kept = [&](const std::string& name) {
    for (const auto& k : keep)
      if (name.starts_with("." + k + ".tmp.")) return true;
    return false;
  };
  std::size_t n = 0;
  for (const auto& name : list(".")) {
    if (name.find('/') != std::string::npos || name.find(".tmp.") == std::string::npos || kept(name)) continue;
    remove(name);
    ++n;
  }
  return n;
}

}  // namespace segscale::storage
