#pragma once
// Where a run's events go, rank 0 alone: metrics.jsonl (always), TensorBoard's event file in the run folder
// (always), and an MLflow tracking server when one is named. The trainer writes each event once, as the
// metrics.jsonl line it always wrote; this fans it out. libtorch-free.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/metrics_log.h"
#include "train/mlflow_log.h"
#include "train/tensorboard_log.h"

namespace segscale::train {

// config.json flattened to MLflow parameters: nested keys joined with '.', values as JSON text (strings bare).
std::vector<std::pair<std::string, std::string>> flatten_params(const nlohmann::json& config);

// The scalars of a metrics.jsonl line, as TensorBoard tags and MLflow keys: "train/loss", "train/lr", ...
// for "step" lines, "val/dice_tc", ... for "val" lines; every number but epoch, step and counts.
std::vector<std::pair<std::string, double>> line_scalars(const nlohmann::json& line);

class RunLog {
 public:
  // Opens every sink; a resumed run keeps what each holds up to `keep_up_to_step` (see MetricsLog and
  // TensorBoardLog) and continues its MLflow run. The config goes to TensorBoard as text, to MLflow as params.
  RunLog(const std::filesystem::path& out, bool resume, std::int64_t keep_up_to_step, const std::optional<MlflowSettings>& mlflow,
         const nlohmann::json& config);
  void write(const nlohmann::json& line);
  // One line each: where the TensorBoard file and the MLflow run are.
  std::vector<std::string> where() const;
  // Ends the MLflow run (FINISHED, KILLED when a signal stopped training) with the run's files as artifacts.
  // Returns the lines to print (MLflow's delivery report); none without MLflow.
  std::vector<std::string> finish(const std::string& status, const std::vector<std::pair<std::string, std::filesystem::path>>& artifacts);

 private:
  std::filesystem::path out_;
  MetricsLog metrics_;
  TensorBoardLog tensorboard_;
  std::unique_ptr<MlflowLog> mlflow_;
};

}  // namespace segscale::train
