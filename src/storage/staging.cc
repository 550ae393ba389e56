#include "storage/staging.h"

#include <unistd.h>

#include <atomic>

#include "io/file.h"
#include "storage/storage.h"
#include "util/error.h"

namespace segscale::storage {
namespace fs = std::filesystem;

Staging::Staging() {
  static std::atomic<int> counter{0};
  root_ = temp_root() / ("segscale-staging-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw error_at(root_.string(), "cannot create a staging folder: " + ec.message());
}

Staging::~Staging() {
  std::error_code ec;
  fs::remove_all(root_, ec);
}

fs::path Staging::local_for(const std::string& url, const char* side) const { return root_ / side / url_as_relative_path(url); }

fs::path Staging::input_file(const std::string& path, bool required) {
  if (!is_url(path)) return path;
  const auto [parent, name] = split_parent(path);
  auto st = open_storage(parent);
  const fs::path local = local_for(path, "in");
  if (!st->exists(name)) {
    if (required) throw error_at(path, "no such object");
    return local;
  }
  const io::Bytes b = st->read(name);
  fs::create_directories(local.parent_path());
  io::write_file_atomic(local, std::span<const std::uint8_t>(b.data(), b.size()));
  return local;
}

fs::path Staging::input_folder(const std::string& path) {
  if (!is_url(path)) return path;
  const fs::path local = local_for(path, "in");
  auto st = open_storage(path);
  if (mirror_to_folder(*st, local) == 0) throw error_at(path, "no objects under this prefix");
  return local;
}

fs::path Staging::output_file(const std::string& path) {
  if (!is_url(path)) return path;
  const fs::path local = local_for(path, "out");
  fs::create_directories(local.parent_path());
  outputs_.emplace_back(local, path);
  return local;
}

fs::path Staging::output_folder(const std::string& path) {
  if (!is_url(path)) return path;
  const fs::path local = local_for(path, "out");
  fs::create_directories(local);
  outputs_.emplace_back(local, path);
  return local;
}

std::size_t Staging::upload() {
  std::size_t n = 0;
  for (const auto& [local, url] : outputs_) {
    if (fs::is_directory(local)) {
      auto st = open_storage(url);
      for (const auto& e : fs::recursive_directory_iterator(local)) {
        if (!e.is_regular_file()) continue;
        const io::Bytes b = io::read_file(e.path());
        st->write_atomic(fs::relative(e.path(), local).generic_string(), std::span<const std::uint8_t>(b.data(), b.size()));
        ++n;
      }
    } else if (fs::exists(local)) {
      const auto [parent, name] = split_parent(url);
      const io::Bytes b = io::read_file(local);
      open_storage(parent)->write_atomic(name, std::span<const std::uint8_t>(b.data(), b.size()));
      ++n;
    }
  }
  return n;
}

}  // namespace segscale::storage
