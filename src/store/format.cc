#include "store/format.h"

#include <fmt/format.h>

#include "util/error.h"

namespace segscale::store {

std::string shard_file(std::uint32_t shard) { return fmt::format("shard-{:06d}.tar", shard); }
std::string sidecar_file(std::uint32_t shard) { return fmt::format("shard-{:06d}.idx.json", shard); }

namespace {
nlohmann::json member_json(const MemberRef& m) { return nlohmann::json::array({m.offset, m.size, m.crc32c}); }
MemberRef member_from(const nlohmann::json& j, const std::string& where, const char* which) {
  if (!j.is_array() || j.size() != 3 || !j[0].is_number_unsigned() || !j[1].is_number_unsigned() || !j[2].is_number_unsigned())
    throw error_at(where, fmt::format("index entry \"{}\" must be [offset, size, crc32c]", which));
  return {j[0].get<std::uint64_t>(), j[1].get<std::uint64_t>(), j[2].get<std::uint32_t>()};
}
}  // namespace

nlohmann::json to_json(const SampleRef& s) {
  return {{"key", s.key}, {"case", s.case_key}, {"copy", s.copy}, {"shard", s.shard},
          {"json", member_json(s.json)}, {"image", member_json(s.image)}, {"label", member_json(s.label)}};
}

SampleRef sample_from_json(const nlohmann::json& j, const std::string& where) {
  try {
    SampleRef s;
    s.key = j.at("key").get<std::string>();
    s.case_key = j.at("case").get<std::string>();
    s.copy = j.at("copy").get<int>();
    s.shard = j.at("shard").get<std::uint32_t>();
    s.json = member_from(j.at("json"), where, "json");
    s.image = member_from(j.at("image"), where, "image");
    s.label = member_from(j.at("label"), where, "label");
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw error_at(where, std::string("malformed index entry: ") + e.what());
  }
}

}  // namespace segscale::store
