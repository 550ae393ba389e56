#include "cli/failure.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "io/file.h"
#include "util/stop_signal.h"

namespace segscale::cli {
namespace {

std::optional<std::filesystem::path>& sagemaker_file() {
  static std::optional<std::filesystem::path> file;
  return file;
}

void record(const std::filesystem::path& file, const std::string& text, const char* what) {
  try {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    io::write_file_atomic(file, text);
  } catch (const std::exception& e) {  // the reason on stderr is what matters; say why the file is missing
    fmt::print(stderr, "segscale: could not write the {}: {}\n", what, e.what());
  }
}

}  // namespace

void record_failures_in(std::optional<std::filesystem::path> sagemaker_failure_file) { sagemaker_file() = std::move(sagemaker_failure_file); }

int fail(const std::string& message, int code, bool print) {
  if (print) fmt::print(stderr, "segscale: {}\n", message);
  if (code == kExitStopped) return code;
  if (sagemaker_file()) record(*sagemaker_file(), "segscale: " + message + "\n", "SageMaker failure file");
  if (const char* f = std::getenv("TORCHELASTIC_ERROR_FILE"); f && *f) {
    // The layout torch.distributed.elastic reads back (ProcessFailure): a message and a timestamp in seconds.
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    record(f, nlohmann::json{{"message", "segscale: " + message}, {"timestamp", now}}.dump() + "\n", "torchrun error file");
  }
  return code;
}

}  // namespace segscale::cli
