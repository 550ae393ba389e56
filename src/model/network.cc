#include "model/network.h"

#include <fmt/format.h>

#include "model/unet.h"
#include "util/error.h"

namespace segscale::model {

const std::vector<std::string>& network_names() {
  static const std::vector<std::string> names{"unet"};
  return names;
}

std::shared_ptr<Network> make_network(const nlohmann::json& config) {
  if (!config.is_object()) throw UsageError("model config must be a JSON object with a \"name\"");
  const std::string name = config.value("name", std::string("unet"));
  if (name == "unet") return std::make_shared<UNetImpl>(unet_config_from_json(config));
  std::string known;
  for (const auto& n : network_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError(fmt::format("unknown model `{}` (known: {})", name, known));
}

std::int64_t parameter_count(torch::nn::Module& m) {
  std::int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace segscale::model
