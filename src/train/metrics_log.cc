#include "train/metrics_log.h"

#include <string>

#include "io/file.h"
#include "util/error.h"

namespace segscale::train {
using nlohmann::json;

MetricsLog::MetricsLog(const std::filesystem::path& path, bool resume, std::int64_t keep_up_to_step) {
  if (resume && std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::string line, kept;
    while (std::getline(in, line)) {
      try {
        auto j = json::parse(line);
        if (j.value("step", std::int64_t{0}) <= keep_up_to_step) kept += line + "\n";
      } catch (const json::exception&) {
        // a torn last line from a kill: dropped
      }
    }
    io::write_file_atomic(path, kept);
  } else if (!resume) {
    io::write_file_atomic(path, std::string());
  }
  out_.open(path, std::ios::app);
  if (!out_) throw error_at(path.string(), "cannot open for appending");
}

void MetricsLog::write(const json& line) {
  out_ << line.dump() << "\n";
  out_.flush();
}

}  // namespace segscale::train
