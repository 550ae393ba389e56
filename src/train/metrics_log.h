#pragma once
// metrics.jsonl: one JSON object a line (steps, validations), appended and flushed line by line. libtorch-free.
#include <cstdint>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace segscale::train {

class MetricsLog {
 public:
  // A fresh run empties the file. A resumed one keeps it, dropping lines whose "step" is past
  // `keep_up_to_step` (a killed run may have logged steps after its last checkpoint) and a torn last line.
  // Throws Error naming the file when it cannot be opened.
  MetricsLog(const std::filesystem::path& path, bool resume, std::int64_t keep_up_to_step);
  void write(const nlohmann::json& line);

 private:
  std::ofstream out_;
};

}  // namespace segscale::train
