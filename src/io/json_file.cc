#include "io/json_file.h"

#include "io/file.h"
#include "util/error.h"

namespace segscale::io {

namespace {

template <typename Json>
Json parse_file(const std::filesystem::path& path) {
  const Bytes bytes = read_file(path);
  try {
    return Json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw error_at(path.string(), std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace

nlohmann::json read_json_file(const std::filesystem::path& path) { return parse_file<nlohmann::json>(path); }

nlohmann::ordered_json read_ordered_json_file(const std::filesystem::path& path) { return parse_file<nlohmann::ordered_json>(path); }

}  // namespace segscale::io
