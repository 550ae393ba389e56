#pragma once
// segscale plot: metrics.jsonl of a training run as a PNG of the loss and validation Dice curves. libtorch-free.
#include <filesystem>

namespace segscale::train {

// Throws Error naming the file if it holds no step or validation lines.
void plot_metrics(const std::filesystem::path& metrics_jsonl, const std::filesystem::path& png);

}  // namespace segscale::train
