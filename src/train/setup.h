#pragma once
// The run's setup from its options: the device, the network, optimiser and loss as values built from config
// (JSON) settings, and config.json. The loop (trainer.cc) sees only these values, never which model or
// recipe produced them.
#include <memory>

#include <nlohmann/json.hpp>

#include "env/world.h"
#include "model/network.h"
#include "train/options.h"
#include "train/run_data.h"
#include "train/step.h"

namespace segscale::train {

// Checks the options that need libtorch or the machine (device, AMP dtype, device cache), sets torch's
// thread count, and returns the device this rank trains on. Throws UsageError naming the flag.
torch::Device setup_device(const TrainOptions& o, const env::World& world);

// The network's config (Network::config() form, {"name": ...} plus MONAI constructor arguments) for this run's
// options and data: in/out channels from the data.
nlohmann::json network_config(const TrainOptions& o, const RunData& data);

// The network, initialised from torch::manual_seed(o.seed) as set_determinism(seed) before building it in
// MONAI, on `device` (channels-last-3d weights with --channels-last). Throws UsageError for a bad config.
std::shared_ptr<model::Network> build_network(const TrainOptions& o, const nlohmann::json& config, const torch::Device& device);

std::unique_ptr<torch::optim::Optimizer> build_optimizer(const TrainOptions& o, model::Network& net);

LossFn build_loss(const TrainOptions& o);

AmpSettings amp_settings(const TrainOptions& o);

// config.json: every setting of the run (what --resume checks, what infer rebuilds the model from).
nlohmann::json run_config(const TrainOptions& o, const RunData& data, const RunLength& length, const env::World& world,
                          const model::Network& net);

}  // namespace segscale::train
