#include "transforms/pipeline.h"

#include <gtest/gtest.h>

#include "../support/temp_dir.h"
#include "data/synth.h"
#include "transforms/load.h"
#include "util/error.h"

namespace segscale::transforms {
namespace {

using nlohmann::json;
using segscale::testing::expect_error_containing;

TEST(PipelineJson, DefaultIsTheCaseStudyChainAndRoundTrips) {
  Pipeline p = Pipeline::case_study();
  EXPECT_EQ(p.cached_prefix(), 2u);
  EXPECT_EQ(p.random_count(), 4);
  Pipeline q = Pipeline::from_json(json::parse(p.to_json().dump()), "x");
  EXPECT_EQ(q.to_json(), p.to_json());
}

TEST(PipelineJson, RejectsUnknownKeysTypesAndValues) {
  expect_error_containing([] { Pipeline::from_json(json::parse(R"({"transforms": [], "seed": 1})"), "p.json"); }, {"p.json", "unknown key \"seed\""});
  expect_error_containing([] { Pipeline::from_json(json::parse(R"({"transforms": [{"type": "spacing", "pixdims": [1,1,1]}]})"), "p.json"); },
                          {"transforms[0]", "unknown key \"pixdims\""});
  expect_error_containing([] { Pipeline::from_json(json::parse(R"({"transforms": [{"type": "zoom"}]})"), "p.json"); }, {"unknown transform type \"zoom\""});
  expect_error_containing([] { Pipeline::from_json(json::parse(R"({"transforms": [{"type": "rand_flip", "prob": 2}]})"), "p.json"); }, {"prob"});
  expect_error_containing([] { Pipeline::from_json(json::parse(R"({"transforms": [{"type": "rand_spatial_crop", "roi": "big"}]})"), "p.json"); },
                          {"wrong type"});
  expect_error_containing([] { Pipeline::from_json(json::parse(R"({"label_map": "x", "transforms": []})"), "p.json"); }, {"label-map preset 'x'"});
  expect_error_containing(
      [] { Pipeline::from_json(json::parse(R"({"transforms": [{"type": "rand_flip"}, {"type": "spacing"}]})"), "p.json"); },
      {"must come before the random transforms"});
}

class PipelineRun : public ::testing::Test {
 protected:
  void SetUp() override {
    data::SynthOptions o;
    o.out = dir_.path();
    o.cases = 1;
    o.shape = {40, 36, 24};
    o.quiet = true;
    data::synthesize_dataset(o);
    Sample s;
    s.image = load_image({dir_ / "imagesTr/BRATS_001.nii.gz"});
    s.label = load_label(dir_ / "labelsTr/BRATS_001.nii.gz", data::label_map_preset("msd"));
    loaded_ = s;
    pipe_ = Pipeline::case_study();
    pipe_.steps[2] = RandCropStep{{16, 16, 8}};
  }
  segscale::testing::TempDir dir_;
  Sample loaded_;
  Pipeline pipe_;
};

TEST_F(PipelineRun, SampleIsByteIdenticalWhateverThreadsOrHistory) {
  Sample c1 = run_cached_stage(pipe_, loaded_, 1);
  Sample c2 = run_cached_stage(pipe_, loaded_, 2);
  ASSERT_EQ(c1.image.data, c2.image.data);
  // copy 3 alone, and copy 3 after copies 0..2 on another cache: identical
  SampleRng alone(9, "BRATS_001", 3);
  Sample a = run_random_stage(pipe_, c1, alone);
  for (int c = 0; c < 3; ++c) {
    SampleRng r(9, "BRATS_001", static_cast<std::uint64_t>(c));
    run_random_stage(pipe_, c2, r);
  }
  SampleRng again(9, "BRATS_001", 3);
  Sample b = run_random_stage(pipe_, c2, again);
  EXPECT_EQ(a.image.data, b.image.data);
  EXPECT_EQ(a.label->data, b.label->data);
  EXPECT_EQ(a.draws, b.draws);
  EXPECT_EQ(a.image.size, (Shape3{16, 16, 8}));
}

TEST_F(PipelineRun, CachedStageIsLeftUntouchedAndCopiesDiffer) {
  Sample cached = run_cached_stage(pipe_, loaded_);
  auto before = cached.image.data;
  SampleRng r0(1, "k", 0), r1(1, "k", 1);
  Sample a = run_random_stage(pipe_, cached, r0), b = run_random_stage(pipe_, cached, r1);
  EXPECT_EQ(cached.image.data, before);
  EXPECT_NE(a.draws, b.draws);
}

TEST_F(PipelineRun, SingleCopyFastPathEqualsTheTwoStages) {
  for (const char* codes : {"RAS", "LPS"}) {  // with and without flips of the spacing grid
    Pipeline p = pipe_;
    p.steps[1] = OrientationStep{codes};
    Sample cached = run_cached_stage(p, loaded_);
    for (std::uint64_t c = 0; c < 6; ++c) {
      SampleRng a(5, "BRATS_001", c), b(5, "BRATS_001", c);
      Sample two = run_random_stage(p, cached, a);
      Sample one = run_single_copy(p, loaded_, b);
      ASSERT_EQ(one.draws, two.draws) << codes << c;
      ASSERT_EQ(one.image.data, two.image.data) << codes << c;
      ASSERT_EQ(one.label->data, two.label->data) << codes << c;
      EXPECT_LT(max_abs_diff(one.image.affine, two.image.affine), 1e-9);
    }
  }
  MonaiRng m1(42, 4), m2(42, 4);  // and MONAI's draws are consumed identically
  Sample cached = run_cached_stage(pipe_, loaded_);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(run_single_copy(pipe_, loaded_, m1).image.data, run_random_stage(pipe_, cached, m2).image.data);
}

TEST_F(PipelineRun, MismatchedLabelGridIsAnError) {
  loaded_.label->affine(0, 0) = 2.0;  // the label claims 2 mm voxels: spacing gives it another grid
  expect_error_containing(
      [&] {
        Sample c = run_cached_stage(pipe_, loaded_);
        SampleRng r(0, "k", 0);
        run_random_stage(pipe_, c, r);
      },
      {"label grid", "differs from image grid"});
}

}  // namespace
}  // namespace segscale::transforms
