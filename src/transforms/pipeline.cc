#include "transforms/pipeline.h"

#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <set>

#include "io/file.h"
#include "io/json_file.h"
#include "io/nifti_image.h"
#include "transforms/intensity.h"
#include "transforms/spacing.h"
#include "transforms/spatial.h"
#include "util/error.h"

namespace segscale::transforms {
namespace {

using nlohmann::json;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// Reads typed parameters of one transform object and rejects keys it does not know.
class Params {
 public:
  Params(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j.is_object()) throw Error(where_ + ": each transform must be a JSON object");
  }
  template <typename T>
  void get(const char* key, T& out) {
    known_.insert(key);
    if (!j_.contains(key)) return;
    try {
      out = j_.at(key).get<T>();
    } catch (const json::exception&) {
      throw Error(fmt::format("{}: \"{}\" has the wrong type ({})", where_, key, j_.at(key).dump()));
    }
  }
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (it.key() != "type" && !known_.count(it.key()))
        throw Error(fmt::format("{}: unknown key \"{}\"", where_, it.key()));
  }
  const std::string& where() const { return where_; }

 private:
  const json& j_;
  std::string where_;
  std::set<std::string> known_;
};

void require(bool ok, const std::string& where, const std::string& what) {
  if (!ok) throw Error(where + ": " + what);
}

// rand_scale_intensity and rand_shift_intensity: a non-negative magnitude (factors / offsets) and a prob.
void parse_intensity_step(Params& p, const char* magnitude_key, double& magnitude, double& prob) {
  p.get(magnitude_key, magnitude);
  p.get("prob", prob);
  require(prob >= 0 && prob <= 1, p.where(), "prob must be within [0, 1]");
  require(magnitude >= 0, p.where(), fmt::format("{} must be >= 0", magnitude_key));
}

// rand_flip's spatial_axis: an axis, a list of distinct axes, or null (all axes, as MONAI).
FlipAxes parse_flip_axes(const json& j, const std::string& where) {
  if (j.is_null()) return FlipAxes::all();
  auto axis = [&](const json& a) {
    require(a.is_number_integer() && a.get<int>() >= 0 && a.get<int>() <= 2, where, fmt::format("spatial_axis must be 0, 1, 2, a list of them or null (got {})", j.dump()));
    return a.get<int>();
  };
  if (!j.is_array()) return FlipAxes(axis(j));
  require(!j.empty(), where, "spatial_axis list is empty");
  FlipAxes f;
  f.axis = {false, false, false};
  for (const auto& a : j) {
    const int i = axis(a);
    require(!f.axis[static_cast<std::size_t>(i)], where, fmt::format("spatial_axis lists axis {} twice", i));
    f.axis[static_cast<std::size_t>(i)] = true;
  }
  return f;
}

nlohmann::ordered_json flip_axes_json(const FlipAxes& f) {
  std::vector<int> axes;
  for (int a = 0; a < 3; ++a)
    if (f.axis[static_cast<std::size_t>(a)]) axes.push_back(a);
  if (axes.size() == 1) return axes[0];  // the single-axis form the case study's settings.json holds
  return axes;
}

Step parse_step(const json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) throw Error(where + ": each transform needs a \"type\" string");
  const std::string type = j["type"];
  Params p(j, where + " (" + type + ")");
  Step s;
  if (type == "spacing") {
    SpacingStep t;
    p.get("pixdim", t.pixdim);
    for (double d : t.pixdim) require(d > 0, p.where(), "pixdim values must be positive");
    s = t;
  } else if (type == "orientation") {
    OrientationStep t;
    p.get("axcodes", t.axcodes);
    s = t;
  } else if (type == "rand_spatial_crop" || type == "center_spatial_crop") {
    Shape3 roi{128, 128, 64};
    p.get("roi", roi);
    for (auto r : roi) require(r > 0, p.where(), "roi values must be positive");
    if (type == "rand_spatial_crop") s = RandCropStep{roi};
    else s = CenterCropStep{roi};
  } else if (type == "rand_flip") {
    RandFlipStep t;
    p.get("prob", t.prob);
    json axes = 0;
    p.get("spatial_axis", axes);
    require(t.prob >= 0 && t.prob <= 1, p.where(), "prob must be within [0, 1]");
    t.spatial_axis = parse_flip_axes(axes, p.where());
    s = t;
  } else if (type == "rand_crop_by_pos_neg_label") {
    RandCropPosNegStep t;
    p.get("roi", t.roi);
    p.get("pos", t.pos);
    p.get("neg", t.neg);
    p.get("num_samples", t.num_samples);
    p.get("use_image", t.use_image);
    p.get("image_threshold", t.image_threshold);
    p.get("allow_smaller", t.allow_smaller);
    require(t.pos >= 0 && t.neg >= 0 && std::isfinite(t.pos) && std::isfinite(t.neg), p.where(), "pos and neg must be non-negative");
    require(t.pos + t.neg > 0, p.where(), "pos and neg cannot both be 0");
    require(t.num_samples >= 1, p.where(), "num_samples must be at least 1");
    require(std::isfinite(t.image_threshold), p.where(), "image_threshold must be a finite number");
    s = t;
  } else if (type == "normalize_intensity") {
    NormalizeStep t;
    p.get("nonzero", t.nonzero);
    p.get("channel_wise", t.channel_wise);
    s = t;
  } else if (type == "rand_scale_intensity") {
    RandScaleStep t;
    parse_intensity_step(p, "factors", t.factors, t.prob);
    s = t;
  } else if (type == "rand_shift_intensity") {
    RandShiftStep t;
    parse_intensity_step(p, "offsets", t.offsets, t.prob);
    s = t;
  } else {
    throw Error(fmt::format("{}: unknown transform type \"{}\" (known: spacing, orientation, rand_spatial_crop, "
                            "center_spatial_crop, rand_crop_by_pos_neg_label, rand_flip, normalize_intensity, rand_scale_intensity, "
                            "rand_shift_intensity)",
                            where, type));
  }
  p.finish();
  return s;
}

nlohmann::ordered_json step_json(const Step& s) {
  using oj = nlohmann::ordered_json;
  return std::visit(Overloaded{
                        [](const SpacingStep& t) { return oj{{"type", "spacing"}, {"pixdim", t.pixdim}}; },
                        [](const OrientationStep& t) { return oj{{"type", "orientation"}, {"axcodes", t.axcodes}}; },
                        [](const RandCropStep& t) { return oj{{"type", "rand_spatial_crop"}, {"roi", t.roi}}; },
                        [](const CenterCropStep& t) { return oj{{"type", "center_spatial_crop"}, {"roi", t.roi}}; },
                        [](const RandFlipStep& t) { return oj{{"type", "rand_flip"}, {"prob", t.prob}, {"spatial_axis", flip_axes_json(t.spatial_axis)}}; },
                        [](const RandCropPosNegStep& t) {
                          return oj{{"type", "rand_crop_by_pos_neg_label"}, {"roi", t.roi}, {"pos", t.pos}, {"neg", t.neg}, {"num_samples", t.num_samples},
                                    {"use_image", t.use_image}, {"image_threshold", t.image_threshold}, {"allow_smaller", t.allow_smaller}};
                        },
                        [](const NormalizeStep& t) { return oj{{"type", "normalize_intensity"}, {"nonzero", t.nonzero}, {"channel_wise", t.channel_wise}}; },
                        [](const RandScaleStep& t) { return oj{{"type", "rand_scale_intensity"}, {"factors", t.factors}, {"prob", t.prob}}; },
                        [](const RandShiftStep& t) { return oj{{"type", "rand_shift_intensity"}, {"offsets", t.offsets}, {"prob", t.prob}}; },
                    },
                    s);
}

void check_label_grid(const Sample& s, const char* step) {
  if (s.label && s.label->size != s.image.size)
    throw Error(fmt::format("{}: label grid {}x{}x{} differs from image grid {}x{}x{} (image and label affines disagree)", step,
                            s.label->size[0], s.label->size[1], s.label->size[2], s.image.size[0], s.image.size[1], s.image.size[2]));
}

// RandSpatialCrop's window: MONAI draws a start only on axes longer than the roi, x then y then z.
Box draw_crop(const Shape3& size, const Shape3& roi, RandomSource& rng, int slot) {
  Box b;
  for (int a = 0; a < 3; ++a) {
    b.size[a] = crop_extent(size[a], roi[a]);
    if (size[a] > roi[a]) b.start[a] = rng.randint(slot, Stream::kOuter, 0, size[a] - roi[a] + 1);
  }
  return b;
}

Sample crop_sample(const Sample& in, const Shape3& start, const Shape3& size) {
  Sample out;
  out.image = crop(in.image, start, size);
  if (in.label) out.label = crop(*in.label, start, size);
  out.draws = in.draws;
  return out;
}

}  // namespace

const char* step_name(const Step& s) {
  static const char* kNames[] = {"spacing", "orientation", "rand_spatial_crop", "center_spatial_crop", "rand_flip",
                                 "normalize_intensity", "rand_scale_intensity", "rand_shift_intensity", "rand_crop_by_pos_neg_label"};
  return kNames[s.index()];
}

bool is_random(const Step& s) {
  return std::holds_alternative<RandCropStep>(s) || std::holds_alternative<RandFlipStep>(s) ||
         std::holds_alternative<RandScaleStep>(s) || std::holds_alternative<RandShiftStep>(s) || std::holds_alternative<RandCropPosNegStep>(s);
}

Pipeline Pipeline::case_study() {
  Pipeline p;
  p.label_map = "blog";
  p.steps = {SpacingStep{}, OrientationStep{}, RandCropStep{}, RandFlipStep{}, NormalizeStep{}, RandScaleStep{}, RandShiftStep{}};
  return p;
}

Pipeline Pipeline::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": a pipeline must be a JSON object with \"transforms\"");
  Pipeline p;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "label_map" && it.key() != "transforms") throw Error(fmt::format("{}: unknown key \"{}\"", where, it.key()));
  if (j.contains("label_map")) {
    if (!j["label_map"].is_string()) throw Error(where + ": \"label_map\" must be a preset name");
    p.label_map = j["label_map"];
    p.label_map_from_file = true;
    try {
      data::label_map_preset(p.label_map);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }
  if (!j.contains("transforms") || !j["transforms"].is_array()) throw Error(where + ": missing \"transforms\" list");
  bool seen_random = false;
  for (std::size_t i = 0; i < j["transforms"].size(); ++i) {
    Step s = parse_step(j["transforms"][i], fmt::format("{}: transforms[{}]", where, i));
    const bool geometric = std::holds_alternative<SpacingStep>(s) || std::holds_alternative<OrientationStep>(s);
    if (seen_random && geometric)
      throw Error(fmt::format("{}: transforms[{}] ({}) must come before the random transforms", where, i, step_name(s)));
    if (std::holds_alternative<RandCropPosNegStep>(s) && seen_random)
      throw Error(fmt::format("{}: transforms[{}] (rand_crop_by_pos_neg_label) must be the first random transform (its foreground index "
                              "is taken from the cached sample)",
                              where, i));
    seen_random |= is_random(s);
    p.steps.push_back(s);
  }
  return p;
}

Pipeline Pipeline::from_file(const std::filesystem::path& path) {
  return from_json(io::read_json_file(path), path.string());
}

nlohmann::ordered_json Pipeline::to_json() const {
  nlohmann::ordered_json j;
  j["label_map"] = label_map;
  j["transforms"] = nlohmann::ordered_json::array();
  for (const auto& s : steps) j["transforms"].push_back(step_json(s));
  return j;
}

Shape3* Pipeline::crop_roi() {
  Shape3* roi = nullptr;
  for (auto& s : steps) {
    if (auto* c = std::get_if<RandCropStep>(&s)) roi = &c->roi;
    if (auto* c = std::get_if<RandCropPosNegStep>(&s)) roi = &c->roi;
    if (auto* c = std::get_if<CenterCropStep>(&s)) roi = &c->roi;
  }
  return roi;
}

const Shape3* Pipeline::crop_roi() const { return const_cast<Pipeline*>(this)->crop_roi(); }

Shape3 output_size(const Pipeline& p, Shape3 size, Affine a) {
  for (const auto& step : p.steps) {
    if (auto* sp = std::get_if<SpacingStep>(&step)) {
      const SpacingPlan plan = plan_spacing(size, a, sp->pixdim);
      size = plan.out_size;
      a = plan.out_affine;
    } else if (auto* o = std::get_if<OrientationStep>(&step)) {
      const auto plan = plan_orientation(size, a, o->axcodes);
      size = plan.out_size;
      a = plan.out_affine;
    } else if (auto* rc = std::get_if<RandCropStep>(&step)) {
      for (int i = 0; i < 3; ++i) size[i] = crop_extent(size[i], rc->roi[i]);
    } else if (auto* cc = std::get_if<CenterCropStep>(&step)) {
      for (int i = 0; i < 3; ++i) size[i] = crop_extent(size[i], cc->roi[i]);
    } else if (auto* pn = std::get_if<RandCropPosNegStep>(&step)) {
      for (int i = 0; i < 3; ++i) size[i] = pn->roi[i] <= 0 ? size[i] : crop_extent(size[i], pn->roi[i]);
    }
  }
  return size;
}

Shape3 output_size(const Pipeline& p, const std::filesystem::path& image) {
  const io::NiftiHeader h = io::read_nifti_header(image);
  Shape3 size{};
  for (int i = 0; i < 3; ++i) size[i] = i < h.ndim() ? h.dim[i + 1] : 1;
  return output_size(p, size, h.best_affine());
}

std::size_t Pipeline::cached_prefix() const {
  std::size_t n = 0;
  while (n < steps.size() && !is_random(steps[n])) ++n;
  return n;
}

int Pipeline::random_count() const {
  int n = 0;
  for (const auto& s : steps) n += is_random(s);
  return n;
}

int Pipeline::samples_per_copy() const {
  const RandCropPosNegStep* c = pos_neg_crop();
  return c ? c->num_samples : 1;
}

const RandCropPosNegStep* Pipeline::pos_neg_crop() const {
  const std::size_t n = cached_prefix();
  return n < steps.size() ? std::get_if<RandCropPosNegStep>(&steps[n]) : nullptr;
}

Sample run_cached_stage(const Pipeline& p, Sample s, int threads, const StepObserver& observe) {
  const std::size_t n = p.cached_prefix();
  for (std::size_t i = 0; i < n; ++i) {
    const Step& step = p.steps[i];
    std::visit(Overloaded{
                   [&](const SpacingStep& t) {
                     // Each key is resampled with its own affine, as MONAI does.
                     auto plan = plan_spacing(s.image.size, s.image.affine, t.pixdim);
                     s.image = resample_bilinear(s.image, plan, {}, threads);
                     if (s.label) s.label = resample_nearest(*s.label, plan_spacing(s.label->size, s.label->affine, t.pixdim));
                   },
                   [&](const OrientationStep& t) {
                     s.image = apply_orientation(s.image, plan_orientation(s.image.size, s.image.affine, t.axcodes));
                     if (s.label) s.label = apply_orientation(*s.label, plan_orientation(s.label->size, s.label->affine, t.axcodes));
                   },
                   [&](const CenterCropStep& t) {
                     check_label_grid(s, "center_spatial_crop");
                     const Box b = center_box(s.image.size, t.roi);
                     s = crop_sample(s, b.start, b.size);
                   },
                   [&](const NormalizeStep& t) { normalize_intensity(s.image, t.nonzero, t.channel_wise); },
                   [&](const auto&) { throw Error("internal: random step in the cached stage"); },
               },
               step);
    if (observe) observe(i, step, s);
  }
  return s;
}

namespace {

// The draws of steps [first, end) for one sample (no rand_crop_by_pos_neg_label among them).
std::vector<StepDraw> draw_rest(const Pipeline& p, std::size_t first, Shape3 size, RandomSource& rng, int first_slot) {
  std::vector<StepDraw> out;
  int slot = first_slot;
  for (std::size_t i = first; i < p.steps.size(); ++i) {
    StepDraw d;
    d.step = i;
    std::visit(Overloaded{
                   [&](const RandCropStep& t) {
                     d.box = draw_crop(size, t.roi, rng, slot);
                     size = d.box.size;
                     ++slot;
                   },
                   [&](const CenterCropStep& t) {
                     d.box = center_box(size, t.roi);
                     size = d.box.size;
                   },
                   [&](const RandFlipStep& t) {
                     d.applied = rng.rand(slot, Stream::kOuter) < t.prob;
                     ++slot;
                   },
                   [&](const NormalizeStep&) {},
                   [&](const RandScaleStep& t) {
                     d.applied = rng.rand(slot, Stream::kOuter) < t.prob;
                     if (d.applied) {
                       rng.rand(slot, Stream::kInner);  // the inner transform's own prob=1.0 test (MONAI 1.4.0)
                       d.value = rng.uniform(slot, Stream::kInner, -t.factors, t.factors);
                     }
                     ++slot;
                   },
                   [&](const RandShiftStep& t) {
                     d.applied = rng.rand(slot, Stream::kOuter) < t.prob;
                     if (d.applied) {
                       rng.rand(slot, Stream::kInner);
                       d.value = rng.uniform(slot, Stream::kInner, -t.offsets, t.offsets);
                     }
                     ++slot;
                   },
                   [&](const RandCropPosNegStep&) { throw Error("rand_crop_by_pos_neg_label must be the first random step"); },
                   [&](const SpacingStep&) { throw Error("spacing after a random step is not supported; move it before"); },
                   [&](const OrientationStep&) { throw Error("orientation after a random step is not supported; move it before"); },
               },
               p.steps[i]);
    out.push_back(d);
  }
  return out;
}

}  // namespace

std::vector<std::vector<StepDraw>> draw_copy(const Pipeline& p, std::size_t first, Shape3 size, RandomSource& rng, int first_slot,
                                             const CropCentres* centres) {
  const auto* crop = first < p.steps.size() ? std::get_if<RandCropPosNegStep>(&p.steps[first]) : nullptr;
  if (!crop) return {draw_rest(p, first, size, rng, first_slot)};
  if (!centres) throw Error("rand_crop_by_pos_neg_label: no foreground index of the sample (internal: crop_centres not built)");
  if (centres->size() != size) throw Error("rand_crop_by_pos_neg_label: foreground index of another grid (internal)");
  // MONAI: the crop draws all its centres, then each later transform runs over the list; every slot has its own
  // stream, so drawing sample by sample afterwards gives the same values.
  std::vector<PosNegDraw> crops;
  for (int i = 0; i < crop->num_samples; ++i) crops.push_back(draw_pos_neg_crop(*crop, *centres, rng, first_slot));
  std::vector<std::vector<StepDraw>> out;
  for (const PosNegDraw& c : crops) {
    StepDraw d;
    d.step = first;
    d.box = c.box;
    d.center = c.center;
    d.foreground = c.foreground;
    std::vector<StepDraw> one{d};
    for (const StepDraw& r : draw_rest(p, first + 1, c.box.size, rng, first_slot + 1)) one.push_back(r);
    out.push_back(std::move(one));
  }
  return out;
}

std::vector<StepDraw> draw_steps(const Pipeline& p, std::size_t first, Shape3 size, RandomSource& rng, int first_slot, const CropCentres* centres) {
  auto all = draw_copy(p, first, size, rng, first_slot, centres);
  if (all.size() != 1)
    throw Error(fmt::format("rand_crop_by_pos_neg_label: num_samples {} yields several samples per copy; only `segscale apply` takes that "
                            "(the loaders and prep take num_samples 1)",
                            all.size()));
  return std::move(all.front());
}

namespace {

// Applies one sample's draws to `cached`.
Sample apply_draws(const Pipeline& p, const std::vector<StepDraw>& draws, const Sample& cached, const StepObserver& observe);

// The foreground index a pipeline's leading rand_crop_by_pos_neg_label needs, when steps from `first` start with it.
std::optional<CropCentres> centres_if_needed(const Pipeline& p, std::size_t first, const Sample& s) {
  if (first >= p.steps.size()) return std::nullopt;
  const auto* crop = std::get_if<RandCropPosNegStep>(&p.steps[first]);
  if (!crop) return std::nullopt;
  return crop_centres(*crop, s, data::label_map_preset(p.label_map));
}

Sample run_random_stage_from(const Pipeline& p, std::size_t first, const Sample& cached, RandomSource& rng, int first_slot,
                             const StepObserver& observe) {
  const auto centres = centres_if_needed(p, first, cached);
  return apply_draws(p, draw_steps(p, first, cached.image.size, rng, first_slot, centres ? &*centres : nullptr), cached, observe);
}

}  // namespace

Sample run_random_stage(const Pipeline& p, const Sample& cached, RandomSource& rng, const StepObserver& observe) {
  return run_random_stage_from(p, p.cached_prefix(), cached, rng, 0, observe);
}

std::vector<Sample> run_random_stage_samples(const Pipeline& p, const Sample& cached, RandomSource& rng, const SampleStepObserver& observe) {
  const std::size_t first = p.cached_prefix();
  const auto centres = centres_if_needed(p, first, cached);
  const auto all = draw_copy(p, first, cached.image.size, rng, 0, centres ? &*centres : nullptr);
  std::vector<Sample> out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    StepObserver one;
    if (observe) one = [&, i](std::size_t index, const Step& step, const Sample& s) { observe(static_cast<int>(i), index, step, s); };
    out.push_back(apply_draws(p, all[i], cached, one));
  }
  return out;
}

namespace {

Sample apply_draws(const Pipeline& p, const std::vector<StepDraw>& draws, const Sample& cached, const StepObserver& observe) {
  std::optional<Sample> owned;
  auto current = [&]() -> const Sample& { return owned ? *owned : cached; };
  auto mutable_sample = [&]() -> Sample& {
    if (!owned) owned = cached;
    return *owned;
  };
  for (const StepDraw& d : draws) {
    const Step& step = p.steps[d.step];
    nlohmann::ordered_json draw{{"transform", step_name(step)}};
    auto crop_to = [&](const char* name) {
      check_label_grid(current(), name);
      Sample cropped = crop_sample(current(), d.box.start, d.box.size);
      owned = std::move(cropped);
    };
    std::visit(Overloaded{
                   [&](const RandCropStep&) {
                     crop_to("rand_spatial_crop");
                     draw["start"] = d.box.start;
                     draw["size"] = d.box.size;
                   },
                   [&](const CenterCropStep&) { crop_to("center_spatial_crop"); },
                   [&](const RandCropPosNegStep&) {
                     crop_to("rand_crop_by_pos_neg_label");
                     draw["center"] = d.center;
                     draw["foreground"] = d.foreground;
                     draw["start"] = d.box.start;
                     draw["size"] = d.box.size;
                   },
                   [&](const RandFlipStep& t) {
                     if (d.applied) {
                       Sample& s = mutable_sample();
                       for (int a = 0; a < 3; ++a) {
                         if (!t.spatial_axis.axis[static_cast<std::size_t>(a)]) continue;
                         flip_axis(s.image, a);
                         if (s.label) flip_axis(*s.label, a);
                       }
                     }
                     draw["applied"] = d.applied;
                   },
                   [&](const NormalizeStep& t) { normalize_intensity(mutable_sample().image, t.nonzero, t.channel_wise); },
                   [&](const RandScaleStep&) {
                     draw["applied"] = d.applied;
                     if (d.applied) {
                       scale_intensity(mutable_sample().image, d.value);
                       draw["factor"] = d.value;
                     }
                   },
                   [&](const RandShiftStep&) {
                     draw["applied"] = d.applied;
                     if (d.applied) {
                       shift_intensity(mutable_sample().image, d.value);
                       draw["offset"] = d.value;
                     }
                   },
                   [&](const auto&) { throw Error("internal: spacing or orientation in the random stage"); },
               },
               step);
    if (draw.size() > 1) mutable_sample().draws.push_back(draw);
    if (observe) observe(d.step, step, current());
  }
  if (!owned) owned = cached;
  return std::move(*owned);
}

}  // namespace

Sample run_single_copy(const Pipeline& p, const Sample& loaded, RandomSource& rng, int threads) {
  const bool fusable = p.steps.size() >= 3 && std::holds_alternative<SpacingStep>(p.steps[0]) &&
                       std::holds_alternative<OrientationStep>(p.steps[1]) && std::holds_alternative<RandCropStep>(p.steps[2]);
  if (!fusable) return run_random_stage(p, run_cached_stage(p, loaded, threads), rng);
  const auto& sp = std::get<SpacingStep>(p.steps[0]);
  const auto& orient = std::get<OrientationStep>(p.steps[1]);
  const auto& roi = std::get<RandCropStep>(p.steps[2]).roi;
  // Geometry only: the spacing grid, then its orientation (a permutation with flips).
  SpacingPlan image_plan = plan_spacing(loaded.image.size, loaded.image.affine, sp.pixdim);
  OrientationPlan full_orient = plan_orientation(image_plan.out_size, image_plan.out_affine, orient.axcodes);
  std::optional<SpacingPlan> label_plan;
  if (loaded.label) {
    label_plan = plan_spacing(loaded.label->size, loaded.label->affine, sp.pixdim);
    if (label_plan->out_size != image_plan.out_size || max_abs_diff(label_plan->out_affine, image_plan.out_affine) > 1e-6)
      return run_random_stage(p, run_cached_stage(p, loaded, threads), rng);  // different grids: no shortcut
  }
  // The crop draw, exactly as run_random_stage makes it, in the oriented grid.
  const Box box = draw_crop(full_orient.out_size, roi, rng, 0);
  const Shape3 &start = box.start, &size = box.size;
  // The same box in the spacing grid.
  Window w;
  for (int a = 0; a < 3; ++a) {
    const int j = full_orient.perm[a];
    const std::int64_t n = image_plan.out_size[j];
    w.size[j] = size[a];
    w.start[j] = full_orient.flip[a] ? n - start[a] - size[a] : start[a];
  }
  Sample s;
  s.image = resample_bilinear(loaded.image, image_plan, w, threads);
  s.image = apply_orientation(s.image, plan_orientation(s.image.size, s.image.affine, orient.axcodes));
  // The orientation of the window carries the affine of the cropped full grid (same voxels, same world).
  Affine cropped = full_orient.out_affine;
  for (int r = 0; r < 3; ++r)
    cropped(r, 3) += full_orient.out_affine(r, 0) * start[0] + full_orient.out_affine(r, 1) * start[1] + full_orient.out_affine(r, 2) * start[2];
  s.image.affine = cropped;
  if (loaded.label) {
    s.label = resample_nearest(*loaded.label, *label_plan, w);
    s.label = apply_orientation(*s.label, plan_orientation(s.label->size, s.label->affine, orient.axcodes));
    s.label->affine = cropped;
  }
  s.draws.push_back({{"transform", "rand_spatial_crop"}, {"start", start}, {"size", size}});
  return run_random_stage_from(p, 3, s, rng, 1, {});
}

}  // namespace segscale::transforms
