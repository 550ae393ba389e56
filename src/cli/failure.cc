#include "cli/failure.h"

#include <fmt/format.h>

#include "env/sagemaker.h"
#include "io/file.h"

namespace segscale::cli {

int fail(const std::string& message, int code, bool print) {
  if (print) fmt::print(stderr, "segscale: {}\n", message);
  try {
    if (auto file = env::sagemaker_failure_file(env::JobEnvironment::from_process())) {
      std::error_code ec;
      std::filesystem::create_directories(file->parent_path(), ec);
      io::write_file_atomic(*file, "segscale: " + message + "\n");
    }
  } catch (const std::exception& e) {  // the reason on stderr is what matters; say why the file is missing
    fmt::print(stderr, "segscale: could not write the SageMaker failure file: {}\n", e.what());
  }
  return code;
}

}  // namespace segscale::cli
