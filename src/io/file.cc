#include "io/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>

#include "util/error.h"
#include "util/fault.h"

namespace segscale::io {
namespace {

std::string os_reason() { return std::strerror(errno); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

}  // namespace

Bytes read_file(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw error_at(path.string(), "cannot open: " + os_reason());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw error_at(path.string(), "cannot stat: " + os_reason());
  if (S_ISDIR(st.st_mode)) throw error_at(path.string(), "is a directory, expected a file");
  Bytes out;
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  for (;;) {
    if (got == out.size()) out.resize(out.size() + 65536);  // file grew, or st_size was 0 (pipes, /proc)
    ssize_t r = ::read(fd.get(), out.data() + got, out.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw error_at(path.string(), "read failed: " + os_reason());
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

std::string temp_name(const std::string& name) {
  static const std::uint32_t process_token = std::random_device{}();
  static std::atomic<unsigned> counter{0};
  return fmt::format(".{}.tmp.{}.{:08x}.{}", name, ::getpid(), process_token, counter.fetch_add(1));
}

void write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> data) {
  std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
  std::string tmp = (dir / temp_name(path.filename().string())).string();
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw error_at(path.string(), "cannot create: " + os_reason());
  auto fail = [&](const std::string& what) {
    std::string reason = os_reason();
    ::close(fd.release());
    ::unlink(tmp.c_str());
    return error_at(path.string(), what + ": " + reason);
  };
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t w = fault_fail("io.write_enospc") ? (errno = ENOSPC, -1) : ::write(fd.get(), data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw fail("write failed");
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(fd.get()) != 0) throw fail("fsync failed");
  if (::close(fd.release()) != 0) {
    std::string reason = os_reason();
    ::unlink(tmp.c_str());
    throw error_at(path.string(), "close failed: " + reason);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string reason = os_reason();
    ::unlink(tmp.c_str());
    throw error_at(path.string(), "cannot rename temporary into place: " + reason);
  }
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());  // best effort: some file systems refuse directory fsync
}

void write_file_atomic(const std::filesystem::path& path, const std::string& text) {
  write_file_atomic(path, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()),
                                                         text.size()));
}

bool has_suffix(const std::filesystem::path& path, const std::string& suffix) {
  const std::string s = path.string();
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace segscale::io
