// libFuzzer target: the pipeline description (JSON).
#include <nlohmann/json.hpp>

#include "transforms/pipeline.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    auto p = segscale::transforms::Pipeline::from_json(j, "fuzz pipeline.json");
    (void)p.to_json();
  } catch (const segscale::Error&) {
  }
  return 0;
}
