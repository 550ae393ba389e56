// The fused executor against the generic chain: for the same draws, run_window's voxels equal
// run_random_stage's bit for bit, from float32 and float16 stores, for every flip axis and normalisation
// mode; chains in another order are left to the generic path; errors name the channel.
#include "transforms/window_stage.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "../support/temp_dir.h"
#include "transforms/intensity.h"
#include "util/half.h"

namespace segscale::transforms {
namespace {

using segscale::testing::expect_error_containing;

// A cached case: 2 modalities with a zero background and a 3-channel label, stored as float32 or float16.
struct Stored {
  Sample cached;  // what decode_sample gives (float16 widened)
  std::vector<std::uint8_t> bytes;
  StoredArrays arrays;
};

Stored make_stored(const Shape3& size, bool float16, std::uint32_t seed) {
  Stored s;
  std::mt19937 gen(seed);
  std::normal_distribution<float> value(300.0f, 90.0f);
  s.cached.image = Volume::make(2, size, Affine{});
  s.cached.label = LabelVolume::make(3, size, Affine{});
  for (std::size_t i = 0; i < s.cached.image.data.size(); ++i) {
    const float v = (gen() % 4 == 0) ? 0.0f : value(gen);  // a quarter background
    s.cached.image.data[i] = float16 ? half_to_float(float_to_half(v)) : v;
  }
  for (auto& l : s.cached.label->data) l = static_cast<std::uint8_t>(gen() % 2);
  const std::size_t n = s.cached.image.data.size();
  if (float16) {
    s.bytes.resize(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint16_t h = float_to_half(s.cached.image.data[i]);
      std::memcpy(s.bytes.data() + 2 * i, &h, 2);
    }
  } else {
    s.bytes.resize(4 * n);
    std::memcpy(s.bytes.data(), s.cached.image.data.data(), 4 * n);
  }
  s.arrays.channels = 2;
  s.arrays.size = size;
  s.arrays.image = s.bytes.data();
  s.arrays.float16 = float16;
  s.arrays.label = s.cached.label->data.data();
  s.arrays.label_channels = 3;
  return s;
}

// run_window's output for the pipeline's random stage vs run_random_stage, for `copies` draws.
void expect_equal_to_generic(const Pipeline& p, const Stored& s, int copies) {
  int fused = 0;
  for (int copy = 0; copy < copies; ++copy) {
    SampleRng rng_a(7, "case", static_cast<std::uint64_t>(copy)), rng_b(7, "case", static_cast<std::uint64_t>(copy));
    const auto centres = centres_for_stored(p, s.arrays);  // a leading rand_crop_by_pos_neg_label's, from the stored bytes
    const std::vector<StepDraw> draws = draw_random_stage(p, s.arrays.size, rng_a, centres ? &*centres : nullptr);
    const auto plan = plan_window(p, draws, s.arrays.size);
    ASSERT_TRUE(plan.has_value()) << "copy " << copy;
    const Sample want = run_random_stage(p, s.cached, rng_b);
    ASSERT_EQ(plan->window.size, want.image.size);
    std::vector<float> image(want.image.data.size(), std::numeric_limits<float>::quiet_NaN());  // poisoned
    std::vector<std::uint8_t> label(want.label->data.size(), 0xee);
    run_window(*plan, s.arrays, image.data(), label.data(), "image");
    ASSERT_EQ(std::memcmp(image.data(), want.image.data.data(), image.size() * 4), 0) << "copy " << copy;
    ASSERT_EQ(std::memcmp(label.data(), want.label->data.data(), label.size()), 0) << "copy " << copy;
    fused += plan->flip[0] || plan->flip[1] || plan->flip[2] || plan->scale || plan->shift;
  }
  EXPECT_GT(fused, 0);  // the draws did exercise the flip and the point operations
}

TEST(WindowStage, CaseStudyChainEqualsGenericBitForBitFromFloat32AndFloat16) {
  Pipeline p = Pipeline::case_study();
  p.steps[2] = RandCropStep{{12, 10, 6}};
  for (bool f16 : {false, true}) {
    SCOPED_TRACE(f16 ? "float16" : "float32");
    expect_equal_to_generic(p, make_stored({17, 14, 9}, f16, 1), 24);
  }
}

TEST(WindowStage, EveryFlipAxisNormalisationModeAndCropSmallerThanRoi) {
  for (int axis = 0; axis < 3; ++axis)
    for (bool nonzero : {true, false})
      for (bool channel_wise : {true, false}) {
        SCOPED_TRACE(::testing::Message() << "axis " << axis << " nonzero " << nonzero << " channel_wise " << channel_wise);
        Pipeline p;
        // roi larger than the volume on z: MONAI keeps the whole axis there.
        p.steps = {RandCropStep{{8, 9, 20}}, RandFlipStep{0.7, axis}, NormalizeStep{nonzero, channel_wise}, RandScaleStep{0.2, 0.6},
                   RandShiftStep{0.3, 0.6}};
        expect_equal_to_generic(p, make_stored({11, 12, 7}, axis == 1, 3), 12);
      }
}

TEST(WindowStage, MonaiBratsAndNnunetChainsEqualGenericBitForBit) {
  // monai-brats after its cached stage: crop, three flips (one draw each), normalise, scale and shift with prob 1.
  Pipeline m;
  m.steps = {RandCropStep{{9, 8, 6}}, RandFlipStep{0.5, 0}, RandFlipStep{0.5, 1}, RandFlipStep{0.5, 2}, NormalizeStep{},
             RandScaleStep{0.1, 1.0}, RandShiftStep{0.1, 1.0}};
  // nnunet-like: the foreground-oversampled crop (with and without image_key), flips of axis lists, then the point operations.
  for (bool use_image : {false, true}) {
    Pipeline n;
    RandCropPosNegStep crop;
    crop.roi = {7, 6, 20};
    crop.pos = 1;
    crop.neg = 2;
    crop.use_image = use_image;
    crop.allow_smaller = true;
    FlipAxes xz;
    xz.axis = {true, false, true};
    n.steps = {crop, RandFlipStep{0.5, xz}, RandFlipStep{0.5, FlipAxes::all()}, RandFlipStep{0.5, 1}, NormalizeStep{true, true},
               RandScaleStep{0.1, 0.5}, RandShiftStep{0.1, 0.5}};
    for (bool f16 : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "use_image " << use_image << " float16 " << f16);
      expect_equal_to_generic(m, make_stored({17, 14, 9}, f16, 2), 16);
      expect_equal_to_generic(n, make_stored({17, 14, 9}, f16, 4), 16);
    }
  }
}

TEST(WindowStage, TwoCropsAndTheValidationChainCompose) {
  Pipeline p;
  p.steps = {RandCropStep{{12, 12, 8}}, CenterCropStep{{6, 5, 4}}, RandFlipStep{1.0, 2}, RandFlipStep{0.5, 1}, NormalizeStep{}};
  Stored s = make_stored({15, 13, 10}, false, 5);
  SampleRng a(1, "k", 0), b(1, "k", 0);
  const auto plan = plan_window(p, draw_random_stage(p, s.arrays.size, a), s.arrays.size);
  ASSERT_TRUE(plan.has_value());
  const Sample want = run_random_stage(p, s.cached, b);
  std::vector<float> image(want.image.data.size(), -1.0f);
  run_window(*plan, s.arrays, image.data(), nullptr, "image");  // no label wanted
  EXPECT_EQ(std::memcmp(image.data(), want.image.data.data(), image.size() * 4), 0);
  EXPECT_TRUE(plan->flip[2]);
}

TEST(WindowStage, OtherOrdersAreLeftToTheGenericChain) {
  const Shape3 size{10, 10, 10};
  auto plan_for = [&](std::vector<Step> steps) {
    Pipeline p;
    p.steps = std::move(steps);
    SampleRng rng(0, "k", 0);
    return plan_window(p, draw_steps(p, 0, size, rng), size);
  };
  EXPECT_FALSE(plan_for({RandFlipStep{1.0, 0}, RandCropStep{{4, 4, 4}}}).has_value());      // flip, then crop
  EXPECT_FALSE(plan_for({RandScaleStep{0.1, 1.0}, NormalizeStep{}}).has_value());          // scale, then normalise
  EXPECT_FALSE(plan_for({RandShiftStep{0.1, 1.0}, RandScaleStep{0.1, 1.0}}).has_value());  // shift, then scale
  EXPECT_FALSE(plan_for({NormalizeStep{}, NormalizeStep{}}).has_value());
  // A step that was not drawn has no effect, so it does not constrain the order.
  EXPECT_TRUE(plan_for({RandFlipStep{0.0, 0}, RandCropStep{{4, 4, 4}}, NormalizeStep{}}).has_value());
  const auto as_stored = plan_for({});
  ASSERT_TRUE(as_stored.has_value());
  EXPECT_EQ(as_stored->window.size, size);
  EXPECT_FALSE(as_stored->normalize || as_stored->scale || as_stored->shift);
}

TEST(WindowStage, NonFiniteVoxelNamesTheChannel) {
  Stored s = make_stored({6, 6, 6}, false, 9);
  const float inf = std::numeric_limits<float>::infinity();
  std::memcpy(s.bytes.data() + 4 * (216 + 5), &inf, 4);  // channel 1
  WindowPlan plan;
  plan.window.size = s.arrays.size;
  plan.normalize = NormalizeStep{};
  std::vector<float> image(2 * 216);
  expect_error_containing([&] { run_window(plan, s.arrays, image.data(), nullptr, "image"); },
                          {"image channel 1", "non-finite voxel value inf at index 5"});
}

TEST(IntensityMoments, MatchesLongDoubleReferenceAndCountsTheTail) {
  std::mt19937 gen(4);
  std::normal_distribution<float> value(1000.0f, 250.0f);
  for (std::size_t n : {1u, 7u, 8u, 13u, 1000u}) {
    std::vector<float> v(n);
    for (auto& x : v) x = gen() % 3 == 0 ? 0.0f : value(gen);
    v[0] = 5.0f;
    long double sum = 0, sq = 0;
    std::size_t count = 0;
    for (float x : v)
      if (x != 0.0f) sum += x, ++count;
    const long double mean = sum / count;
    for (float x : v)
      if (x != 0.0f) sq += (x - mean) * (x - mean);
    const Moments m = intensity_moments(v.data(), n, true, "v");
    EXPECT_EQ(m.count, count) << n;
    EXPECT_EQ(m.mean, static_cast<float>(mean)) << n;
    const float want_std = count > 1 ? static_cast<float>(std::sqrt(sq / count)) : 1.0f;  // one value: std 0 counts as 1
    EXPECT_NEAR(m.std, want_std, 1e-6f * want_std) << n;
  }
  const std::vector<float> zeros(9, 0.0f);
  EXPECT_EQ(intensity_moments(zeros.data(), zeros.size(), true, "v").count, 0u);
  EXPECT_EQ(intensity_moments(zeros.data(), zeros.size(), false, "v").count, 9u);
}

}  // namespace
}  // namespace segscale::transforms
