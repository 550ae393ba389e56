#pragma once
// Local stand-ins for a command's s3:// paths (infer, eval): remote inputs are downloaded into a private
// temporary folder before the command runs, remote outputs are written there and uploaded by upload() after
// it succeeded. Local paths pass through unchanged. A remote file lands at TMP/in/BUCKET/KEY, so files that sit
// side by side in S3 (RUN/model.pt and RUN/config.json) sit side by side here too. Errors name the URL.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace segscale::storage {

class Staging {
 public:
  Staging();
  ~Staging();  // removes the temporary folder
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  // One object (a file URL): downloaded. `required` false: absent is fine (nothing is written).
  std::filesystem::path input_file(const std::string& path, bool required = true);
  // Every object under a folder URL, with their relative names.
  std::filesystem::path input_folder(const std::string& path);
  // Where to write a remote output file / folder; upload() sends what was written there.
  std::filesystem::path output_file(const std::string& path);
  std::filesystem::path output_folder(const std::string& path);
  // Uploads every output written, folders file by file. Returns the number of objects written.
  std::size_t upload();

 private:
  std::filesystem::path local_for(const std::string& url, const char* side) const;
  std::filesystem::path root_;
  std::vector<std::pair<std::filesystem::path, std::string>> outputs_;  // local path -> URL (file or folder)
};

}  // namespace segscale::storage
