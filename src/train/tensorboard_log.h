#pragma once
// TensorBoard's event file, written directly in its own format (TFRecord-framed `Event` protocol buffers, file
// version "brain.Event:2"): scalars as simple values, text as the text plugin's string tensors. One file per run
// folder, named so TensorBoard finds it (`tensorboard --logdir RUN`). libtorch-free; no protobuf library needed
// for the six fields written.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

namespace segscale::train {

inline constexpr const char* kTensorBoardFile = "events.out.tfevents.segscale";

class TensorBoardLog {
 public:
  // A fresh run starts the file. A resumed one keeps its records up to `keep_up_to_step` (a killed run may have
  // logged steps after its last checkpoint; the config text of that step is written again) and drops a torn
  // tail, so no step appears twice. Throws Error naming the file when it cannot be written.
  TensorBoardLog(const std::filesystem::path& path, bool resume, std::int64_t keep_up_to_step);
  void scalar(std::string_view tag, double value, std::int64_t step);
  void text(std::string_view tag, std::string_view markdown, std::int64_t step);

 private:
  void append(const std::string& event);
  std::filesystem::path path_;
  std::ofstream out_;
};

// What a reader needs of one serialized Event (tests, and the trimming on resume).
struct EventFields {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;
  std::string tag;                    // the first summary value's
  std::optional<float> simple_value;  // a scalar's
  std::string plugin;                 // "text" for text
  std::string text;                   // a text tensor's string
};
// Throws Error when the bytes are not an Event as this writer encodes it.
EventFields parse_event(std::string_view event);

}  // namespace segscale::train
