#pragma once
// A run's parameters, metrics, tags and artifacts sent to an MLflow tracking server over MLflow's REST API
// (2.0: experiments/get-by-name and create, runs/create, update and log-batch, and the mlflow-artifacts proxy).
// Training never waits on it: metrics go into a bounded queue that one sender thread drains in batches; a
// server that is down or slow is retried with backoff and said once, and what it missed is sent when it is
// back (or counted and reported at the end). libtorch-free; needs the HTTP client (libcurl).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace segscale::train {

struct MlflowSettings {
  std::string uri;             // http://host:port[/prefix]
  std::string experiment;      // by name (created when missing); ignored when experiment_id is set
  std::string experiment_id;   // MLFLOW_EXPERIMENT_ID
  std::string run_name;
  std::string token;           // MLFLOW_TRACKING_TOKEN: Authorization: Bearer
  std::string user, password;  // MLFLOW_TRACKING_USERNAME / _PASSWORD: basic authentication
  double flush_seconds = 30;   // at the end, how long to keep trying to deliver what is queued
};

// The settings from --mlflow (or MLFLOW_TRACKING_URI), --mlflow-experiment (or MLFLOW_EXPERIMENT_NAME /
// MLFLOW_EXPERIMENT_ID, default "segscale"), --mlflow-run-name (or MLFLOW_RUN_NAME, default the run folder's
// name). nullopt when no URI is given. Throws UsageError for a URI segscale cannot talk to (file:, databricks:,
// a bare path), naming the fix. `env` looks up a variable (std::getenv in the CLI).
std::optional<MlflowSettings> mlflow_settings(const std::string& uri, const std::string& experiment, const std::string& run_name,
                                              const std::filesystem::path& run_dir,
                                              const std::function<std::optional<std::string>(const char*)>& env);

class MlflowLog {
 public:
  // Starts the sender. The MLflow run is created (or, for a resumed run, taken up again from RUN/mlflow.json)
  // by the sender, so an unreachable server delays nothing. `params` are logged once, when the run is created.
  MlflowLog(MlflowSettings settings, std::filesystem::path run_dir, bool resume, std::vector<std::pair<std::string, std::string>> params,
            std::vector<std::pair<std::string, std::string>> tags);
  ~MlflowLog();  // as finish("KILLED") when finish was not called
  MlflowLog(const MlflowLog&) = delete;
  MlflowLog& operator=(const MlflowLog&) = delete;

  // Never blocks on the network. Beyond 100,000 queued metrics the oldest are dropped (and counted).
  void metric(const std::string& key, double value, std::int64_t step);
  // Delivers what is queued (waiting up to flush_seconds for a server that is down), uploads `artifacts`
  // (name in the run, local file), marks the run `status` (FINISHED, FAILED, KILLED) and stops the sender.
  // Returns one line for the user: where the run is, and what was not delivered.
  std::string finish(const std::string& status, const std::vector<std::pair<std::string, std::filesystem::path>>& artifacts);
  // The run's address in MLflow's UI once created ("URI/#/experiments/E/runs/R"), else the server's URI.
  std::string where() const;

 private:
  struct Metric {
    std::string key;
    double value;
    std::int64_t timestamp_ms, step;
  };
  void sender();
  bool ensure_run();
  bool send_batch(std::vector<Metric>& batch);
  void upload_artifacts();
  nlohmann::json call(const std::string& method, const std::string& path, const nlohmann::json& body, long* status = nullptr);
  void outage(const std::string& reason);
  std::string where_locked() const;

  MlflowSettings s_;
  std::filesystem::path run_dir_;
  bool resume_;
  std::vector<std::pair<std::string, std::string>> params_, tags_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Metric> queue_;
  std::int64_t dropped_ = 0, rejected_ = 0, sent_ = 0, sent_since_outage_ = 0;
  bool finishing_ = false, stop_ = false, down_ = false;
  std::chrono::steady_clock::time_point deadline_;
  std::string status_ = "KILLED";
  std::vector<std::pair<std::string, std::filesystem::path>> artifacts_;
  std::string run_id_, experiment_id_, artifact_uri_, artifact_note_;
  bool finished_remote_ = false;
  std::thread thread_;
};

}  // namespace segscale::train
