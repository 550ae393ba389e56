#pragma once
// Checks of segscale train's options and of its run folder, before any work starts. libtorch-free.
#include <cstdint>
#include <filesystem>
#include <optional>

#include "train/mlflow_log.h"
#include "train/train.h"

namespace segscale::train {

// Throws UsageError naming the flag and its valid range for the first impossible value (--epochs 0,
// --max-steps -1, --val-fraction 1.5, --batch 0, ...), and "not both" for --store with --data.
void check_options(const TrainOptions& o);

// The run's limits: epochs (nullopt: as many as max_steps needs) and steps (nullopt: no step limit).
struct RunLength {
  std::optional<std::int64_t> epochs, steps;
  // Steps the whole run takes with `per_epoch` steps an epoch.
  std::int64_t total_steps(std::int64_t per_epoch) const;
  bool epoch_limit_reached(std::int64_t epoch) const { return epochs && epoch >= *epochs; }
};
RunLength run_length(const TrainOptions& o);

// The run's MLflow settings from its options and MLflow's environment variables (see mlflow_settings); nullopt
// when no tracking server is named. Throws UsageError for a URI segscale cannot talk to.
std::optional<MlflowSettings> mlflow_settings_of(const TrainOptions& o);

// The files a run writes into its folder (a previous run's are what --overwrite removes); plans.json and
// dataset.json: an nnU-Net store's plan and dataset.json, as nnU-Net keeps them in its results folders;
// validation_summary.json: the fold's final validation (nnU-Net's validation/summary.json).
inline constexpr const char* kRunFiles[] = {"config.json", "metrics.jsonl", "checkpoint.pt", "model.pt", "last.pt", "splits.json",
                                            "events.out.tfevents.segscale", "mlflow.json", "plans.json", "dataset.json",
                                            "validation_summary.json"};
inline constexpr const char* kWeightFiles[] = {"checkpoint.pt", "model.pt", "last.pt"};  // a run saved these

// Whether the run files found in a folder are a run: some weights were saved (checkpoint.pt, model.pt, last.pt)
// or metrics.jsonl holds a record. A start that failed before its first step leaves only config.json, an empty
// metrics.jsonl and splits.json: that is no run, and the same command may start again over it.
// `weights_exist`: any of the weight files exists; `metrics`: metrics.jsonl's bytes (empty when absent).
bool holds_a_run(bool weights_exist, const std::string& metrics);

// Before a fresh (not resumed) run: throws UsageError if `out` already holds a run, naming --resume and
// --overwrite; with `overwrite` and `writer` (rank 0), removes that run's files (and nothing else in the folder).
// Files of a start that never trained (holds_a_run false) are removed by the writer with a one-line note.
void prepare_run_folder(const std::filesystem::path& out, bool resume, bool overwrite, bool writer);

}  // namespace segscale::train
