#pragma once
// The local file system behind the Storage interface: today's behaviour unchanged (pread on cached file
// descriptors, temp + fsync + rename + directory fsync for writes).
#include <filesystem>
#include <map>
#include <mutex>

#include "storage/storage.h"

namespace segscale::storage {

class LocalStorage final : public Storage {
 public:
  explicit LocalStorage(std::filesystem::path root);
  ~LocalStorage() override;

  std::string root() const override { return root_.string(); }
  std::string where(const std::string& name) const override { return (root_ / name).string(); }
  bool is_local() const override { return true; }
  io::Bytes read(const std::string& name) override;
  io::Bytes read_range(const std::string& name, std::uint64_t offset, std::uint64_t size) override;
  void read_range_into(const std::string& name, std::uint64_t offset, std::uint64_t size, io::Bytes& out) override;
  std::optional<std::uint64_t> size(const std::string& name) override;
  std::vector<std::string> list(const std::string& prefix) override;
  void make_root() override;
  void write_atomic(const std::string& name, std::span<const std::uint8_t> data) override;
  std::filesystem::path temp_path(const std::string& name) override;
  void commit_temp(const std::filesystem::path& temp, const std::string& name) override;
  void remove(const std::string& name) override;
  std::size_t remove_leftovers(const std::vector<std::string>& keep) override;

 private:
  int fd(const std::string& name);
  std::filesystem::path root_;
  std::mutex mu_;
  std::map<std::string, int> fds_;  // read_range's open files, kept for the storage's lifetime
};

}  // namespace segscale::storage
