#pragma once
// checkpoint.pt: everything a resumed run needs to continue exactly where the saved one stopped (the network's
// parameters and buffers, the optimiser's state, the run's position, fp16 AMP's loss scale) and the run's
// config.json, against which a resume is checked.
#include <array>
#include <limits>
#include <cstdint>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "model/network.h"

namespace segscale::train {

// Where a run stands. `epoch`/`batch`: the next batch to train (batch counts within the epoch); `step`:
// optimiser steps taken by the whole run.
struct Position {
  std::int64_t epoch = 0, batch = 0, step = 0;
  double best = -1;             // best validation mean Dice so far (-1: none yet)
  std::array<double, 3> best_per_class{0, 0, 0};
  double loss_scale = 65536.0;  // fp16 AMP's dynamic loss scale, as torch.cuda.amp.GradScaler's
  std::int64_t good_steps = 0;  // fp16 AMP: steps since the scale last changed
  // nnU-Net's exponential moving average of the pseudo-Dice mean (0.9 old + 0.1 new; the first validation's value
  // as it is): what nnU-Net picks checkpoint_best by. NaN before the first pseudo-Dice validation.
  double ema = std::numeric_limits<double>::quiet_NaN();
};

// The config.json keys a resumed run must share with the checkpoint (the rest, e.g. epochs, max_steps,
// device, may change between invocations).
inline constexpr const char* kResumeKeys[] = {"store",    "batch",    "lr",       "weight_decay", "amsgrad",       "seed",
                                              "val_fraction", "world", "model",  "optimizer",    "momentum",      "nesterov",
                                              "loss",     "schedule", "warmup_epochs", "min_lr",   "pipeline",      "label_map",
                                              "steps_per_epoch"};

// Writes atomically (temporary name, fsync, rename): a kill or a full disk leaves the previous checkpoint whole.
void save_checkpoint(const std::filesystem::path& path, model::Network& net, torch::optim::Optimizer& opt, const Position& pos,
                     const nlohmann::json& config);

// Loads into `net` and `opt` (built as the saved run built them) and returns the saved position. Throws Error
// naming the file: no checkpoint, an unreadable one, or one whose config differs from `config` in a
// kResumeKeys setting (naming the setting, both values).
Position load_checkpoint(const std::filesystem::path& path, model::Network& net, torch::optim::Optimizer& opt, const nlohmann::json& config);

}  // namespace segscale::train
