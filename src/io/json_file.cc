#include "io/json_file.h"

#include "io/file.h"
#include "util/error.h"

namespace segscale::io {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  const Bytes bytes = read_file(path);
  try {
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw error_at(path.string(), std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace segscale::io
