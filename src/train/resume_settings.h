#pragma once
// A resumed run continues with the settings it started with: every setting whose flag the command line does not
// give is taken from the run's config.json, so `segscale train --out RUN --resume` alone continues RUN. A flag
// that is given and differs is then refused by the checkpoint's check (all differences in one message). The run
// length (--epochs, --max-steps) may change on resume: it is taken from the run only when neither is given, and a
// change is recorded (config.json, and a "resume" line in metrics.jsonl). libtorch-free.
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/train.h"

namespace segscale::train {

// Fills `o` from `config` (the run's config.json) for each flag `given` reports absent, the recipe first (its
// other settings then re-applied, flags still winning). Returns the flags it took, e.g. {"--batch", "--lr"}.
// A --recipe given on this command line counts as giving every setting the recipe sets.
std::vector<std::string> take_settings_from_run(TrainOptions& o, const nlohmann::json& config,
                                                std::function<bool(const std::string& flag)> given);

}  // namespace segscale::train
