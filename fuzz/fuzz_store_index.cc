// libFuzzer target: the store's index entries (index.json / sidecars).
#include <nlohmann/json.hpp>

#include "store/format.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("samples") || !j["samples"].is_array()) return 0;
  for (const auto& s : j["samples"]) {
    try {
      auto ref = segscale::store::sample_from_json(s, "fuzz index.json");
      (void)segscale::store::to_json(ref);
    } catch (const segscale::Error&) {
    }
  }
  return 0;
}
