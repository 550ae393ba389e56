#include "train/run_log.h"

#include <fmt/core.h>

#include "segscale/version.h"

namespace segscale::train {
using nlohmann::json;

std::vector<std::pair<std::string, std::string>> flatten_params(const json& config) {
  std::vector<std::pair<std::string, std::string>> out;
  auto walk = [&](auto&& self, const json& j, const std::string& prefix) -> void {
    if (j.is_object() && !j.empty()) {
      for (const auto& [k, v] : j.items()) self(self, v, prefix.empty() ? k : prefix + "." + k);
      return;
    }
    out.emplace_back(prefix, j.is_string() ? j.get<std::string>() : j.dump());
  };
  walk(walk, config, "");
  return out;
}

std::vector<std::pair<std::string, double>> line_scalars(const json& line) {
  const std::string type = line.value("type", "");
  const std::string prefix = type == "step" ? "train/" : type == "val" ? "val/" : "";
  std::vector<std::pair<std::string, double>> out;
  if (prefix.empty()) return out;
  for (const auto& [k, v] : line.items())
    if (v.is_number() && k != "epoch" && k != "step" && k != "val_samples") out.emplace_back(prefix + k, v.get<double>());
  return out;
}

RunLog::RunLog(const std::filesystem::path& out, bool resume, std::int64_t keep_up_to_step, const std::optional<MlflowSettings>& mlflow,
               const json& config)
    : out_(out), metrics_(out / "metrics.jsonl", resume, keep_up_to_step), tensorboard_(out / kTensorBoardFile, resume, keep_up_to_step) {
  // Indented by four spaces: TensorBoard's text plugin renders Markdown, this keeps the JSON as a code block.
  std::string md = "    ";
  for (const char c : config.dump(2)) md += c == '\n' ? std::string("\n    ") : std::string(1, c);
  tensorboard_.text("config", md, keep_up_to_step);
  if (mlflow) {
    const std::vector<std::pair<std::string, std::string>> tags = {
        {"mlflow.source.name", "segscale"}, {"mlflow.source.type", "LOCAL"}, {"segscale.version", kVersion},
        {"segscale.run_dir", std::filesystem::absolute(out).lexically_normal().string()}};
    mlflow_ = std::make_unique<MlflowLog>(*mlflow, out, resume, flatten_params(config), tags);
  }
}

void RunLog::write(const json& line) {
  metrics_.write(line);
  const std::int64_t step = line.value("step", std::int64_t{0});
  for (const auto& [tag, value] : line_scalars(line)) {
    tensorboard_.scalar(tag, value, step);
    if (mlflow_) mlflow_->metric(tag, value, step);
  }
}

std::vector<std::string> RunLog::where() const {
  std::vector<std::string> w{fmt::format("tensorboard: {} (tensorboard --logdir {})", (out_ / kTensorBoardFile).string(), out_.string())};
  if (mlflow_) w.push_back("mlflow: " + mlflow_->where());
  return w;
}

std::vector<std::string> RunLog::finish(const std::string& status, const std::vector<std::pair<std::string, std::filesystem::path>>& artifacts) {
  if (!mlflow_) return {};
  return {mlflow_->finish(status, artifacts)};
}

}  // namespace segscale::train
