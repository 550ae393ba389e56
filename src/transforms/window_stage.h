#pragma once
// The chain after the cached stage (the random stage, or the validation crop and normalisation) run straight
// from a stored sample's arrays into a batch slot: the crop window is read out of the stored bytes (float32 or
// float16) with the flips applied as it is copied, then per channel the normalisation statistics and one
// fused pass for normalize, scale and shift. No decoded copy of the whole case, no cropped copy, no pass per
// step; the voxels are exactly run_random_stage's for the same draws (the same float32 operations in the same
// order; tests/transforms/window_stage_test.cc compares them bit for bit). libtorch-free.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "transforms/pipeline.h"

namespace segscale::transforms {

// Views into a stored sample's bytes, C order [C, X, Y, Z] (z fastest); `label` may be null.
struct StoredArrays {
  std::int64_t channels = 0;
  Shape3 size{};
  const std::uint8_t* image = nullptr;
  bool float16 = false;  // image values are IEEE binary16, else float32 (both little-endian)
  const std::uint8_t* label = nullptr;
  std::int64_t label_channels = 0;
};

// What the steps do once their draws are known, folded into one window, three flips and the point operations.
struct WindowPlan {
  Box window;                                      // in the stored grid; its size is the output's
  std::array<bool, 3> flip{false, false, false};  // output axes reversed
  std::optional<NormalizeStep> normalize;
  std::optional<float> scale, shift;  // x * scale, then x + shift (float32 values of the drawn factor, offset)
};

// Folds the draws of steps [draws.front().step, end) of `p` for a stored grid of `size`. nullopt when the steps
// are not in the order this executor runs them (crops, then flips, then at most one normalisation, then at
// most one scale followed by at most one shift): the caller runs the generic chain instead.
std::optional<WindowPlan> plan_window(const Pipeline& p, const std::vector<StepDraw>& draws, const Shape3& size);

// Writes the plan's output: `image` gets channels x window.size float32 values, `label` (when both it and
// in.label are given) label_channels x window.size bytes. A non-finite voxel met by the normalisation:
// Error naming `where` and the channel, as normalize_intensity.
void run_window(const WindowPlan& plan, const StoredArrays& in, float* image, std::uint8_t* label, const std::string& where);

// The foreground index for the pipeline's leading rand_crop_by_pos_neg_label (nullopt without one) from a stored
// sample: its TC/WT/ET label channels (foreground WT or ET, as MONAI) and, with use_image, its image.
std::optional<CropCentres> centres_for_stored(const Pipeline& p, const StoredArrays& in);

}  // namespace segscale::transforms
