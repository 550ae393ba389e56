// libFuzzer target: MSD dataset.json parsing (files it names need not exist; that is an error path too).
#include <unistd.h>

#include <filesystem>

#include "data/catalog.h"
#include "io/file.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("segscale-fuzz-ds-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  segscale::io::write_file_atomic(dir / "dataset.json", std::span<const std::uint8_t>(data, size));
  try {
    auto c = segscale::data::open_catalog(dir);
    (void)c.find("x");
  } catch (const segscale::Error&) {
  }
  return 0;
}
