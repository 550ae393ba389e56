// libFuzzer target: the .npy header parser.
#include "io/npy.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto h = segscale::io::parse_npy_header({data, size}, "fuzz.npy");
    (void)h.element_count();
  } catch (const segscale::Error&) {
  }
  return 0;
}
