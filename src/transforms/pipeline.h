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
// Also available: {"type": "center_spatial_crop", "roi": [...]} (the case study's validation crop), and
//   {"type": "rand_crop_by_pos_neg_label", "roi": [96, 96, 96], "pos": 1, "neg": 1, "num_samples": 1,
//    "use_image": false, "image_threshold": 0.0, "allow_smaller": false}
// (MONAI's RandCropByPosNegLabeld with label_key the label, image_key the image when use_image; roi values <= 0
// take the whole axis; it must be the first random step). rand_flip's spatial_axis is an axis, a list of axes
// (one draw flips them all, as MONAI) or null (all three axes, MONAI's default).
//
// num_samples > 1: one pass of the random stage (a "copy") yields num_samples samples, as MONAI's list of dicts:
// the crop draws its num_samples centres first, then every later random step draws for sample 0, 1, ... in
// turn. `segscale apply` writes them as consecutive outputs (copy c, sample i -> index c * num_samples + i);
// the single-sample entry points (run_random_stage, draw_steps, the loaders, prep) refuse such a pipeline.
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "data/label_map.h"
#include "transforms/pos_neg_crop.h"
#include "transforms/rng.h"
#include "transforms/spatial.h"
#include "transforms/volume.h"

namespace segscale::transforms {

struct SpacingStep { std::array<double, 3> pixdim{1.5, 1.5, 2.0}; };
struct OrientationStep { std::string axcodes = "RAS"; };
struct RandCropStep { Shape3 roi{128, 128, 64}; };
struct CenterCropStep { Shape3 roi{128, 128, 64}; };
// The axes a flip reverses (0 = x); converts from one axis index.
struct FlipAxes {
  std::array<bool, 3> axis{true, false, false};
  FlipAxes() = default;
  FlipAxes(int a) : axis{a == 0, a == 1, a == 2} {}  // NOLINT: implicit, so RandFlipStep{0.5, 1} reads as before
  static FlipAxes all() {
    FlipAxes f;
    f.axis = {true, true, true};
    return f;
  }
  bool operator==(const FlipAxes& o) const { return axis == o.axis; }
};
struct RandFlipStep { double prob = 0.5; FlipAxes spatial_axis{0}; };
struct RandCropPosNegStep {
  Shape3 roi{96, 96, 96};
  double pos = 1.0, neg = 1.0;
  int num_samples = 1;
  bool use_image = false;        // MONAI's image_key: background only where some image channel > image_threshold
  double image_threshold = 0.0;
  bool allow_smaller = false;    // false: a roi larger than the volume is an Error (as MONAI's ValueError)
};
struct NormalizeStep { bool nonzero = true; bool channel_wise = true; };
struct RandScaleStep { double factors = 0.1; double prob = 0.5; };
struct RandShiftStep { double offsets = 0.1; double prob = 0.5; };
using Step = std::variant<SpacingStep, OrientationStep, RandCropStep, CenterCropStep, RandFlipStep, NormalizeStep,
                          RandScaleStep, RandShiftStep, RandCropPosNegStep>;

const char* step_name(const Step& s);
bool is_random(const Step& s);

struct Pipeline {
  std::string label_map = "blog";
  // Whether label_map was written in the JSON (a file's or a store's) rather than a preset's default: only then
  // may it override the data's numbering (transforms/label_map_choice.h).
  bool label_map_from_file = false;
  std::vector<Step> steps;

  // The case study's chain (spec section 1) with the blog's label map.
  static Pipeline case_study();
  // Parses and validates; throws Error("<where>: ...") naming the bad key or value.
  static Pipeline from_json(const nlohmann::json& j, const std::string& where);
  static Pipeline from_file(const std::filesystem::path& path);
  nlohmann::ordered_json to_json() const;

  std::size_t cached_prefix() const;  // number of leading deterministic steps
  int random_count() const;           // number of random steps (RNG slots)
  int samples_per_copy() const;       // num_samples of its rand_crop_by_pos_neg_label, else 1
  // The rand_crop_by_pos_neg_label step, when the random stage starts with one (its only allowed place).
  const RandCropPosNegStep* pos_neg_crop() const;
  // The training patch: the roi of the chain's last crop of any kind (rand_spatial_crop, center_spatial_crop,
  // rand_crop_by_pos_neg_label), what a network is planned for and validation slides; nullptr when none crops.
  Shape3* crop_roi();
  const Shape3* crop_roi() const;
};

// The spatial size a sample has after the chain's geometry (spacing, orientation and every crop; a crop keeps an
// axis shorter than its roi whole, as MONAI), for an input of `size` voxels with affine `a`: from headers alone.
Shape3 output_size(const Pipeline& p, Shape3 size, Affine a);
// The same for the image file `image`, from its NIfTI header alone.
Shape3 output_size(const Pipeline& p, const std::filesystem::path& image);

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
  Box box;               // rand_spatial_crop, rand_crop_by_pos_neg_label (drawn) and center_spatial_crop (computed):
                         // the window in the incoming grid
  Shape3 center{};       // rand_crop_by_pos_neg_label: the corrected centre
  bool foreground = false;  // rand_crop_by_pos_neg_label: the centre came from the foreground list
  bool applied = false;  // rand_flip, rand_scale_intensity, rand_shift_intensity: whether the step applies
  double value = 0;      // rand_scale_intensity: the factor; rand_shift_intensity: the offset (0 when not applied)
};

// The draws of steps [first, steps.size()) for a sample entering step `first` with spatial size `size`, taken
// from `rng` exactly as run_random_stage takes them (`first_slot`: the RNG slot of the first random step in
// that range). Every executor of the random stage applies these: the host transforms and the device cache
// (src/loader/device_cache.h), so both give the same sample for (seed, case, epoch). Throws Error for a
// spacing or orientation step in that range. A rand_crop_by_pos_neg_label step draws from `centres` (built from
// the sample entering it: crop_centres, or centres_for_stored in window_stage.h); Error when they are missing or of
// another grid, and when it yields more than one sample (num_samples > 1: use draw_copy).
std::vector<StepDraw> draw_steps(const Pipeline& p, std::size_t first, Shape3 size, RandomSource& rng, int first_slot = 0,
                                 const CropCentres* centres = nullptr);
// The draws of every sample of one copy (samples_per_copy() lists; see num_samples above).
std::vector<std::vector<StepDraw>> draw_copy(const Pipeline& p, std::size_t first, Shape3 size, RandomSource& rng, int first_slot = 0,
                                             const CropCentres* centres = nullptr);
// draw_steps over the random stage of a cached case of spatial size `cached_size`.
inline std::vector<StepDraw> draw_random_stage(const Pipeline& p, const Shape3& cached_size, RandomSource& rng,
                                               const CropCentres* centres = nullptr) {
  return draw_steps(p, p.cached_prefix(), cached_size, rng, 0, centres);
}

// Runs steps [0, cached_prefix()) on a freshly loaded case. `threads` parallelises resampling.
Sample run_cached_stage(const Pipeline& p, Sample loaded, int threads = 1, const StepObserver& observe = {});

// Runs the random stage on `cached` (left untouched: a leading crop copies only the window). Error for a
// pipeline with num_samples > 1 (run_random_stage_samples).
Sample run_random_stage(const Pipeline& p, const Sample& cached, RandomSource& rng, const StepObserver& observe = {});
// Every sample of one copy (samples_per_copy() of them); `observe` is called with the sample's index too.
using SampleStepObserver = std::function<void(int sample, std::size_t index, const Step& step, const Sample& s)>;
std::vector<Sample> run_random_stage_samples(const Pipeline& p, const Sample& cached, RandomSource& rng, const SampleStepObserver& observe = {});

// One copy straight from a loaded case, for on-the-fly augmentation: when the pipeline starts with
// spacing, orientation and a random crop, the crop is drawn in the final grid first and only the voxels
// inside it are resampled. Returns exactly what run_random_stage(run_cached_stage(...)) returns, with the same
// draws from `rng` (the fused path is taken only where that holds; otherwise it runs the two stages).
Sample run_single_copy(const Pipeline& p, const Sample& loaded, RandomSource& rng, int threads = 1);

}  // namespace segscale::transforms
