// RandCropByPosNegLabeld's centres: the foreground index against a brute-force list, MONAI's centre correction
// on known values, and under the sample RNG the share of foreground centres at pos / (pos + neg) over many
// draws (binomial bound: 5 standard deviations); the pipeline steps' JSON (flip axis lists, the crop's keys).
#include "transforms/pos_neg_crop.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "../support/temp_dir.h"
#include "transforms/pipeline.h"
#include "transforms/pipeline_presets.h"

namespace segscale::transforms {
namespace {

using nlohmann::json;
using segscale::testing::expect_error_containing;

TEST(CropCentres, KthForegroundAndBackgroundEqualBruteForce) {
  const Shape3 size{7, 5, 6};
  std::mt19937 gen(3);
  std::vector<std::uint8_t> cls(7 * 5 * 6);
  for (auto& c : cls) c = static_cast<std::uint8_t>(gen() % 3);
  const CropCentres centres(size, cls);
  std::vector<std::int64_t> fg, bg;
  for (std::size_t i = 0; i < cls.size(); ++i) {
    if (cls[i] == 1) fg.push_back(static_cast<std::int64_t>(i));
    if (cls[i] == 2) bg.push_back(static_cast<std::int64_t>(i));
  }
  ASSERT_EQ(centres.foreground(), static_cast<std::int64_t>(fg.size()));
  ASSERT_EQ(centres.background(), static_cast<std::int64_t>(bg.size()));
  for (std::size_t k = 0; k < fg.size(); ++k) EXPECT_EQ(centres.foreground_at(static_cast<std::int64_t>(k)), fg[k]);
  for (std::size_t k = 0; k < bg.size(); ++k) EXPECT_EQ(centres.background_at(static_cast<std::int64_t>(k)), bg[k]);
  expect_error_containing([&] { centres.foreground_at(static_cast<std::int64_t>(fg.size())); }, {"outside"});
  expect_error_containing([&] { CropCentres(size, std::vector<std::uint8_t>(cls.size(), 0)); }, {"No sampling location"});
}

TEST(CropCentres, ClassesFollowMonaiForMultiChannelAndRawLabels) {
  const Shape3 size{4, 1, 1};
  const data::LabelMap& msd = data::label_map_preset("msd");  // WT={1,2,3} ET={3}
  // TC/WT/ET channels: MONAI drops channel 0, so a voxel only in TC is not foreground.
  const std::uint8_t tc_wt_et[12] = {1, 0, 0, 0, /*WT*/ 0, 1, 0, 0, /*ET*/ 0, 0, 1, 0};
  EXPECT_EQ(crop_classes(size, tc_wt_et, 3, msd, nullptr, 0, 0, false), (std::vector<std::uint8_t>{2, 1, 1, 2}));
  const std::uint8_t raw[4] = {0, 1, 3, 0};
  EXPECT_EQ(crop_classes(size, raw, 1, msd, nullptr, 0, 0, false), (std::vector<std::uint8_t>{2, 1, 1, 2}));
  // image_key: background only where some channel is > threshold.
  const float image[8] = {0, 5, 0, 0.5f, /*channel 1*/ 0, 0, 0, 0.25f};
  EXPECT_EQ(crop_classes(size, raw, 1, msd, image, 2, 0.3, true), (std::vector<std::uint8_t>{0, 1, 1, 2}));
  EXPECT_EQ(crop_classes(size, raw, 1, msd, image, 2, 0.6, true), (std::vector<std::uint8_t>{0, 1, 1, 0}));
}

// A source that returns the given values in order (rand) and fixed integers (randint).
class Scripted final : public RandomSource {
 public:
  Scripted(double r, std::int64_t k) : r_(r), k_(k) {}
  double rand(int, Stream) override { return r_; }
  std::int64_t randint(int, Stream, std::int64_t lo, std::int64_t hi) override { return std::min(lo + k_, hi - 1); }

 private:
  double r_;
  std::int64_t k_;
};

TEST(PosNegCrop, CentreCorrectionAndWindowAsMonai) {
  // One foreground voxel at the corner (0, 0, 0) of a 10x9x5 grid; roi 4x5x8 with allow_smaller (z longer).
  const Shape3 size{10, 9, 5};
  std::vector<std::uint8_t> cls(10 * 9 * 5, 2);
  cls[0] = 1;
  RandCropPosNegStep step;
  step.roi = {4, 5, 8};
  step.allow_smaller = true;
  const CropCentres centres(size, cls);
  Scripted pick_fg(0.0, 0);
  const PosNegDraw d = draw_pos_neg_crop(step, centres, pick_fg, 0);
  EXPECT_TRUE(d.foreground);
  // valid_start = size // 2 = (2, 2, 2) (z: the volume's 5); the centre moves up to it.
  EXPECT_EQ(d.center, (Shape3{2, 2, 2}));
  EXPECT_EQ(d.box.start, (Shape3{0, 0, 0}));
  EXPECT_EQ(d.box.size, (Shape3{4, 5, 5}));
  // The last background voxel (9, 8, 4): valid_end = uint16(n + 1 - roi / 2) = (9, 7, 3); the centre is clamped
  // to valid_end - 1 = (8, 6, 2); the window ends at the grid's end.
  Scripted pick_last_bg(0.99, centres.background() - 1);
  const PosNegDraw e = draw_pos_neg_crop(step, centres, pick_last_bg, 0);
  EXPECT_FALSE(e.foreground);
  EXPECT_EQ(e.center, (Shape3{8, 6, 2}));
  EXPECT_EQ(e.box.start, (Shape3{6, 4, 0}));
  EXPECT_EQ(e.box.size, (Shape3{4, 5, 5}));
  step.allow_smaller = false;
  expect_error_containing([&] { draw_pos_neg_crop(step, centres, pick_fg, 0); }, {"larger than the volume", "allow_smaller"});
  // roi values <= 0 take the whole axis.
  step.roi = {-1, 3, 0};
  const PosNegDraw f = draw_pos_neg_crop(step, centres, pick_fg, 0);
  EXPECT_EQ(f.box.size, (Shape3{10, 3, 5}));
}

TEST(PosNegCrop, SampleRngCentresLandOnForegroundAtTheRequestedRatio) {
  // A foreground block in the middle of a 40x40x30 grid; the crop's centre range covers it, so a foreground draw
  // keeps its voxel, and a background draw never lands on it (it is corrected only near the borders).
  const Shape3 size{40, 40, 30};
  std::vector<std::uint8_t> cls(40 * 40 * 30, 2);
  auto flat = [&](std::int64_t x, std::int64_t y, std::int64_t z) { return static_cast<std::size_t>((x * 40 + y) * 30 + z); };
  for (int x = 15; x < 25; ++x)
    for (int y = 12; y < 20; ++y)
      for (int z = 10; z < 16; ++z) cls[flat(x, y, z)] = 1;
  const CropCentres centres(size, cls);
  for (const auto& [pos, neg] : {std::pair{1.0, 2.0}, std::pair{1.0, 1.0}, std::pair{3.0, 1.0}}) {
    RandCropPosNegStep step;
    step.roi = {8, 8, 8};
    step.pos = pos;
    step.neg = neg;
    const int n = 3000;
    int on_foreground = 0;
    for (int i = 0; i < n; ++i) {
      SampleRng rng(5, "case", static_cast<std::uint64_t>(i));
      const PosNegDraw d = draw_pos_neg_crop(step, centres, rng, 0);
      const bool on = cls[flat(d.center[0], d.center[1], d.center[2])] == 1;
      EXPECT_EQ(on, d.foreground) << "draw " << i;
      on_foreground += on;
    }
    const double p = pos / (pos + neg), sd = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(on_foreground, n * p, 5 * sd) << "pos " << pos << " neg " << neg;  // |z| > 5: probability < 6e-7
  }
}

TEST(PosNegCropJson, ParsesRoundTripsAndRejectsBadValues) {
  const json j = json::parse(R"({"label_map": "msd", "transforms": [{"type": "spacing"}, {"type": "rand_crop_by_pos_neg_label", "roi": [8, 8, 8],
      "pos": 1, "neg": 2, "num_samples": 3, "use_image": true, "image_threshold": 0.5, "allow_smaller": true},
      {"type": "rand_flip", "spatial_axis": [0, 2]}, {"type": "rand_flip", "spatial_axis": null}, {"type": "rand_flip", "spatial_axis": 1}]})");
  const Pipeline p = Pipeline::from_json(j, "p.json");
  ASSERT_NE(p.pos_neg_crop(), nullptr);
  EXPECT_EQ(p.samples_per_copy(), 3);
  EXPECT_EQ(p.pos_neg_crop()->neg, 2.0);
  EXPECT_EQ(std::get<RandFlipStep>(p.steps[2]).spatial_axis.axis, (std::array<bool, 3>{true, false, true}));
  EXPECT_EQ(std::get<RandFlipStep>(p.steps[3]).spatial_axis.axis, (std::array<bool, 3>{true, true, true}));
  EXPECT_EQ(std::get<RandFlipStep>(p.steps[4]).spatial_axis.axis, (std::array<bool, 3>{false, true, false}));
  EXPECT_EQ(p.to_json()["transforms"][4]["spatial_axis"], 1);  // a single axis stays a number
  EXPECT_EQ(Pipeline::from_json(json::parse(p.to_json().dump()), "x").to_json(), p.to_json());
  auto bad = [](const char* step) {
    return [step] { Pipeline::from_json(json::parse(std::string(R"({"transforms": [)") + step + "]}"), "p.json"); };
  };
  expect_error_containing(bad(R"({"type": "rand_crop_by_pos_neg_label", "pos": 0, "neg": 0})"), {"p.json", "cannot both be 0"});
  expect_error_containing(bad(R"({"type": "rand_crop_by_pos_neg_label", "neg": -1})"), {"non-negative"});
  expect_error_containing(bad(R"({"type": "rand_crop_by_pos_neg_label", "num_samples": 0})"), {"num_samples"});
  expect_error_containing(bad(R"({"type": "rand_crop_by_pos_neg_label", "image_key": "image"})"), {"unknown key \"image_key\""});
  expect_error_containing(bad(R"({"type": "rand_flip"}, {"type": "rand_crop_by_pos_neg_label"})"), {"must be the first random transform"});
  expect_error_containing(bad(R"({"type": "rand_flip", "spatial_axis": [0, 0]})"), {"axis 0 twice"});
  expect_error_containing(bad(R"({"type": "rand_flip", "spatial_axis": 3})"), {"spatial_axis must be"});
  expect_error_containing(bad(R"({"type": "rand_flip", "spatial_axis": []})"), {"empty"});
}

TEST(PosNegCropRun, SeveralSamplesPerCopyOnlyThroughTheSamplesEntryPoint) {
  Pipeline p;
  p.label_map = "msd";
  RandCropPosNegStep crop;
  crop.roi = {4, 4, 4};
  crop.num_samples = 3;
  p.steps = {crop, RandFlipStep{0.5, FlipAxes::all()}};
  Sample s;
  s.image = Volume::make(1, {8, 8, 8}, Affine{});
  s.label = LabelVolume::make(1, {8, 8, 8}, Affine{});
  for (std::size_t i = 0; i < s.image.data.size(); ++i) {
    s.image.data[i] = static_cast<float>(i);
    s.label->data[i] = i % 7 == 0 ? 3 : 0;
  }
  SampleRng a(1, "k", 0), b(1, "k", 0);
  const std::vector<Sample> out = run_random_stage_samples(p, s, a);
  ASSERT_EQ(out.size(), 3u);
  // The same draws, as draw_copy lists them.
  const CropCentres centres = crop_centres(crop, s, data::label_map_preset("msd"));
  const auto draws = draw_copy(p, 0, s.image.size, b, 0, &centres);
  ASSERT_EQ(draws.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].image.size, (Shape3{4, 4, 4}));
    EXPECT_EQ(out[i].draws[0]["start"], json(draws[i][0].box.start));
    EXPECT_EQ(out[i].draws[1]["applied"], draws[i][1].applied);
  }
  SampleRng c(1, "k", 0);
  expect_error_containing([&] { run_random_stage(p, s, c); }, {"num_samples 3", "apply"});
}

TEST(PipelinePresets, EveryPresetParsesAndUnknownNamesAreListed) {
  for (const auto& name : pipeline_preset_names()) {
    const Pipeline p = pipeline_from_arg(name);
    EXPECT_EQ(p.to_json(), Pipeline::from_json(pipeline_preset(name), name).to_json());
  }
  EXPECT_EQ(pipeline_from_arg("case-study").to_json(), Pipeline::case_study().to_json());
  EXPECT_EQ(pipeline_from_arg("").to_json(), Pipeline::case_study().to_json());
  const Pipeline m = pipeline_from_arg("monai-brats");
  EXPECT_EQ(m.cached_prefix(), 2u);
  EXPECT_EQ(std::get<RandCropStep>(m.steps[2]).roi, (Shape3{224, 224, 144}));
  for (int a = 0; a < 3; ++a) EXPECT_EQ(std::get<RandFlipStep>(m.steps[3 + a]).spatial_axis, FlipAxes(a));
  EXPECT_EQ(std::get<RandScaleStep>(m.steps[7]).prob, 1.0);
  EXPECT_EQ(std::get<RandShiftStep>(m.steps[8]).prob, 1.0);
  const Pipeline n = pipeline_from_arg("nnunet");
  ASSERT_NE(n.pos_neg_crop(), nullptr);
  EXPECT_EQ(n.pos_neg_crop()->pos / (n.pos_neg_crop()->pos + n.pos_neg_crop()->neg), 1.0 / 3);
  EXPECT_EQ(pipeline_preset_val_mode("case-study"), "crop");
  EXPECT_EQ(pipeline_preset_val_mode("monai-brats"), "full");
  expect_error_containing([] { pipeline_preset("nnunet2"); }, {"unknown pipeline preset 'nnunet2'", "case-study, monai-brats, nnunet"});
  expect_error_containing([] { pipeline_from_arg("no-such-file.json"); }, {"no-such-file.json"});
}

}  // namespace
}  // namespace segscale::transforms
