// libFuzzer target: the torch.save reader (model/torch_save_file.h): zip directory, pickle subset, stored entries.
#include <vector>

#include "model/torch_save_file.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<char> file(data, data + size);
  try {
    (void)segscale::model::torch_save_kind(file);
    for (const auto& [name, t] : segscale::model::read_state_dict_entries(file, "fuzz.pth"))
      (void)segscale::model::zip_entry(file, t.record, "fuzz.pth");
  } catch (const segscale::Error&) {
  }
  return 0;
}
