#pragma once
// segscale plot: metrics.jsonl of a training run as a PNG of the loss, learning-rate and validation Dice curves.
// libtorch-free.
#include <filesystem>
#include <string>
#include <vector>

namespace segscale::train {

// Tick values for an axis from 0 to `max` (> 0): multiples of a step of 1, 2 or 5 x 10^k chosen so that at most
// `most` + 1 ticks fit, from 0 to the largest multiple <= max; integer steps only when `integers` (step counts),
// so a 3-step run gets 0 1 2 3, never a label twice.
std::vector<double> axis_ticks(double max, int most, bool integers);

// The loss panel's title from the run's config.json "loss" block (DiceCE -> "DICE + CE LOSS"; deep supervision
// said); "LOSS" when the config is absent or names no loss.
std::string loss_title(const std::filesystem::path& config_json);

// Draws three panels: the loss (titled from config.json beside the metrics), the learning rate per step, and the
// validation Dice per region. Returns the panel titles in order. Throws Error naming the file if it holds no
// step or validation lines.
std::vector<std::string> plot_metrics(const std::filesystem::path& metrics_jsonl, const std::filesystem::path& png);

}  // namespace segscale::train
