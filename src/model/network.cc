#include "model/network.h"

#include <fmt/format.h>

#include "model/dynunet.h"
#include "model/plain_conv_unet.h"
#include "model/segresnet.h"
#include "model/unet.h"
#include "util/error.h"

namespace segscale::model {

const std::vector<std::string>& network_names() {
  static const std::vector<std::string> names{"unet", "segresnet", "dynunet", "plainconvunet"};
  return names;
}

std::shared_ptr<Network> make_network(const nlohmann::json& config) {
  if (!config.is_object()) throw UsageError("model config must be a JSON object with a \"name\"");
  if (config.contains("name") && !config["name"].is_string())
    throw UsageError(fmt::format("model config: `name` must be a string, got {}", config["name"].dump()));
  const std::string name = config.value("name", std::string("unet"));
  if (name == "unet") return std::make_shared<UNetImpl>(unet_config_from_json(config));
  if (name == "segresnet") return std::make_shared<SegResNetImpl>(segresnet_config_from_json(config));
  if (name == "dynunet") return std::make_shared<DynUNetImpl>(dynunet_config_from_json(config));
  if (name == "plainconvunet") return std::make_shared<PlainConvUNetImpl>(plain_conv_unet_config_from_json(config));
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
