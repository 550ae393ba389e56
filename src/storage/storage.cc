#include "storage/storage.h"

#include <fmt/format.h>

#include <cstdlib>

#include "storage/local_storage.h"
#if SEGSCALE_WITH_S3
#include "storage/s3_storage.h"
#endif
#include "util/error.h"

namespace segscale::storage {
namespace fs = std::filesystem;

bool is_url(const std::string& p) { return p.starts_with("s3://"); }

std::unique_ptr<Storage> open_storage(const std::string& p) {
#if SEGSCALE_WITH_S3
  if (is_url(p)) return std::make_unique<S3Storage>(p);
#else
  if (is_url(p))
    throw UsageError(p + ": this segscale was built without S3 support (SEGSCALE_WITH_S3=OFF); rebuild it with "
                         "libcurl4-openssl-dev and libssl-dev installed");
#endif
  if (p.find("://") != std::string::npos)
    throw UsageError(p + ": unsupported URL scheme (segscale reads local paths and s3:// URLs)");
  return std::make_unique<LocalStorage>(p.empty() ? fs::path(".") : fs::path(p));
}

std::pair<std::string, std::string> split_parent(const std::string& p) {
  if (is_url(p)) {
    std::string s = p;
    while (s.size() > 5 && s.back() == '/') s.pop_back();
    auto slash = s.rfind('/');
    if (slash <= 4) throw UsageError(p + ": expected s3://BUCKET/KEY");
    return {s.substr(0, slash), s.substr(slash + 1)};
  }
  fs::path path(p);
  return {path.parent_path().empty() ? "." : path.parent_path().string(), path.filename().string()};
}

fs::path temp_root() {
  const char* tmp = std::getenv("TMPDIR");
  return fs::path(tmp && *tmp ? tmp : "/tmp");
}

fs::path url_as_relative_path(const std::string& url) {
  const auto scheme = url.find("://");
  fs::path out;
  for (const auto& part : fs::path(scheme == std::string::npos ? url : url.substr(scheme + 3)))
    if (part != "." && part != ".." && part != "/" && !part.empty()) out /= part;
  return out;
}

std::size_t mirror_to_folder(Storage& from, const fs::path& dir) {
  LocalStorage to(dir);
  std::size_t copied = 0;
  for (const auto& name : from.list("")) {
    if (auto have = to.size(name); have && have == from.size(name)) continue;
    const fs::path dest = dir / name;
    std::error_code ec;
    fs::create_directories(dest.parent_path(), ec);
    if (ec) throw error_at(dest.parent_path().string(), "cannot create folder: " + ec.message());
    to.write_atomic(name, from.read(name));
    ++copied;
  }
  return copied;
}

}  // namespace segscale::storage
