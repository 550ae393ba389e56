#pragma once
// The run's setup from its options: the device, the network, optimiser and loss as values built from config
// (JSON) settings, and config.json. The loop (trainer.cc) sees only these values, never which model or
// recipe produced them.
#include <memory>

#include <nlohmann/json.hpp>

#include "env/world.h"
#include "model/network.h"
#include "model/loss.h"
#include "train/options.h"
#include "train/schedule.h"
#include "train/run_data.h"
#include "train/step.h"

namespace segscale::train {

// Checks the options that need libtorch or the machine (device, AMP dtype, device cache), sets torch's
// thread count, and returns the device this rank trains on. Throws UsageError naming the flag.
torch::Device setup_device(const TrainOptions& o, const env::World& world);

// The network's config (Network::config() form, {"name": ...} plus MONAI constructor arguments) for this run's
// options and data: the UNet's from --channels/--strides/--res-units, another model's from the recipe's
// arguments; --model-config's over either; in_channels from the data (UsageError if the config says otherwise),
// out_channels 3 unless given; a DynUNet without kernel_size/strides planned for the crop (dynunet_plan).
nlohmann::json network_config(const TrainOptions& o, const RunData& data);

// The network, initialised from torch::manual_seed(o.seed) as set_determinism(seed) before building it in
// MONAI, on `device` (channels-last-3d weights with --channels-last). Throws UsageError for a bad config.
std::shared_ptr<model::Network> build_network(const TrainOptions& o, const nlohmann::json& config, const torch::Device& device);

std::unique_ptr<torch::optim::Optimizer> build_optimizer(const TrainOptions& o, model::Network& net);

// The loss config: o.smooth_nr/smooth_dr, the recipe's arguments (o.loss_args), --loss-config's over them.
model::LossConfig loss_config(const TrainOptions& o);
LossFn build_loss(const model::LossConfig& c);

// The schedule of a run of `epochs` epochs (train/schedule.h); the optimiser's rate for an epoch is set with set_lr.
Schedule schedule_for(const TrainOptions& o, std::int64_t epochs);
void set_lr(torch::optim::Optimizer& opt, double lr);

// nnU-Net's kernels and strides for a patch (DynUNet's kernel_size, strides, upsample_kernel_size), until the
// data path's planner (from spacing and patch) is wired: isotropic spacing assumed, every axis halved while it
// stays at least 4 voxels and even, at most 5 times; kernels 3.
nlohmann::json dynunet_plan(const transforms::Shape3& patch);

AmpSettings amp_settings(const TrainOptions& o);

// config.json: every setting of the run (what --resume checks, what infer rebuilds the model from: "model").
nlohmann::json run_config(const TrainOptions& o, const RunData& data, const RunLength& length, const env::World& world,
                          const model::Network& net, const model::LossConfig& loss);

}  // namespace segscale::train
