#pragma once
// The transform chain as data. A pipeline is a list of steps; its longest prefix of deterministic steps is
// the cached stage (computed once per case), the rest is the random stage (run once per copy).
//
// JSON form (unknown keys are rejected, every parameter optional with the case study's default):
//   {"label_map": "blog",
//    "transforms": [{"type": "spacing", "pixdim": [1.5, 1.5, 2.0]},
//                   {"type": "orientation", "axcodes": "RAS"},
//                   {"type": "rand_spatial_crop", "roi": [128, 128, 64]},
//                   {"type": "rand_flip", "prob": 0.5, "spatial_axis": 0},
//                   {"type": "normalize_intensity", "nonzero": true, "channel_wise": true},
//                   {"type": "rand_scale_intensity", "factors": 0.1, "prob": 0.5},
//                   {"type": "rand_shift_intensity", "offsets": 0.1, "prob": 0.5}]}
// Also available: {"type": "center_spatial_crop", "roi": [...]} (the case study's validation crop).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "data/label_map.h"
#include "transforms/rng.h"
#include "transforms/spatial.h"
#include "transforms/volume.h"

namespace segscale::transforms {

struct SpacingStep { std::array<double, 3> pixdim{1.5, 1.5, 2.0}; };
struct OrientationStep { std::string axcodes = "RAS"; };
struct RandCropStep { Shape3 roi{128, 128, 64}; };
struct CenterCropStep { Shape3 roi{128, 128, 64}; };
struct RandFlipStep { double prob = 0.5; int spatial_axis = 0; };
struct NormalizeStep { bool nonzero = true; bool channel_wise = true; };
struct RandScaleStep { double factors = 0.1; double prob = 0.5; };
struct RandShiftStep { double offsets = 0.1; double prob = 0.5; };
using Step = std::variant<SpacingStep, OrientationStep, RandCropStep, CenterCropStep, RandFlipStep, NormalizeStep,
                          RandScaleStep, RandShiftStep>;

const char* step_name(const Step& s);
bool is_random(const Step& s);

struct Pipeline {
  std::string label_map = "blog";
  std::vector<Step> steps;

  // The case study's chain (spec section 1) with the blog's label map.
  static Pipeline case_study();
  // Parses and validates; throws Error("<where>: ...") naming the bad key or value.
  static Pipeline from_json(const nlohmann::json& j, const std::string& where);
  static Pipeline from_file(const std::filesystem::path& path);
  nlohmann::ordered_json to_json() const;

  std::size_t cached_prefix() const;  // number of leading deterministic steps
  int random_count() const;           // number of random steps (RNG slots)
};

// An image with its (optional) label map while it travels through the chain, and the draws taken.
struct Sample {
  Volume image;
  std::optional<LabelVolume> label;
  nlohmann::ordered_json draws = nlohmann::ordered_json::array();
};

// Called after every step with its index in the pipeline, e.g. to dump intermediates for parity tests.
using StepObserver = std::function<void(std::size_t index, const Step& step, const Sample& sample)>;

// What the random stage does to one sample, drawn before any voxel moves: one entry per step.
struct StepDraw {
  std::size_t step = 0;  // index into Pipeline::steps
  Box box;               // rand_spatial_crop (drawn) and center_spatial_crop (computed): the window in the incoming grid
  bool applied = false;  // rand_flip, rand_scale_intensity, rand_shift_intensity: whether the step applies
  double value = 0;      // rand_scale_intensity: the factor; rand_shift_intensity: the offset (0 when not applied)
};

// The draws of steps [first, steps.size()) for a sample entering step `first` with spatial size `size`, taken
// from `rng` exactly as run_random_stage takes them (`first_slot`: the RNG slot of the first random step in
// that range). Every executor of the random stage applies these: the host transforms and the device cache
// (src/loader/device_cache.h), so both give the same sample for (seed, case, epoch). Throws Error for a
// spacing or orientation step in that range.
std::vector<StepDraw> draw_steps(const Pipeline& p, std::size_t first, Shape3 size, RandomSource& rng, int first_slot = 0);
// draw_steps over the random stage of a cached case of spatial size `cached_size`.
inline std::vector<StepDraw> draw_random_stage(const Pipeline& p, const Shape3& cached_size, RandomSource& rng) {
  return draw_steps(p, p.cached_prefix(), cached_size, rng);
}

// Runs steps [0, cached_prefix()) on a freshly loaded case. `threads` parallelises resampling.
Sample run_cached_stage(const Pipeline& p, Sample loaded, int threads = 1, const StepObserver& observe = {});

// Runs the random stage on `cached` (left untouched: a leading crop copies only the window).
Sample run_random_stage(const Pipeline& p, const Sample& cached, RandomSource& rng, const StepObserver& observe = {});

// One copy straight from a loaded case, for on-the-fly augmentation: when the pipeline starts with
// spacing, orientation and a random crop, the crop is drawn in the final grid first and only the voxels
// inside it are resampled. Returns exactly what run_random_stage(run_cached_stage(...)) returns, with the same
// draws from `rng` (the fused path is taken only where that holds; otherwise it runs the two stages).
Sample run_single_copy(const Pipeline& p, const Sample& loaded, RandomSource& rng, int threads = 1);

}  // namespace segscale::transforms
