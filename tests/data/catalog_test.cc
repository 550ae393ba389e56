#include "data/catalog.h"

#include <gtest/gtest.h>

#include "../support/temp_dir.h"
#include "data/case_check.h"
#include "data/synth.h"
#include "io/file.h"
#include "io/nifti_image.h"

namespace segscale::data {
namespace {

namespace fs = std::filesystem;
using segscale::testing::expect_error_containing;
using segscale::testing::TempDir;

SynthOptions tiny(const fs::path& out, const std::string& layout) {
  SynthOptions o;
  o.out = out;
  o.cases = 3;
  o.shape = {12, 10, 8};
  o.layout = layout;
  o.quiet = true;
  o.threads = 1;
  return o;
}

TEST(Catalog, OpensAnMsdDataset) {
  TempDir dir;
  synthesize_dataset(tiny(dir.path(), "msd"));
  Catalog c = open_catalog(dir.path());
  EXPECT_EQ(c.layout, Layout::kMsd);
  ASSERT_EQ(c.training.size(), 3u);
  EXPECT_EQ(c.training[0].key, "BRATS_001");
  EXPECT_EQ(c.training[0].images.size(), 1u);
  EXPECT_EQ(c.modalities, (std::vector<std::string>{"FLAIR", "T1w", "t1gd", "T2w"}));
  EXPECT_EQ(c.label_preset, "blog");
  auto r = check_case(c.training[1], c, &label_map_preset("msd"));
  EXPECT_EQ(r.channels, 4);
  EXPECT_EQ(r.spatial_shape, (std::array<std::int64_t, 3>{12, 10, 8}));
  EXPECT_GT(r.label_counts[0], 0u);
}

TEST(Catalog, BratsFoldersWithAndWithoutDatasetJsonGiveTheSameCases) {
  TempDir dir;
  synthesize_dataset(tiny(dir.path(), "brats21"));
  Catalog with_json = open_catalog(dir.path());
  fs::remove(dir / "dataset.json");
  Catalog folders = open_catalog(dir.path());
  EXPECT_EQ(folders.layout, Layout::kBrats);
  EXPECT_EQ(folders.label_preset, "brats21");
  EXPECT_EQ(folders.modalities, (std::vector<std::string>{"flair", "t1", "t1ce", "t2"}));
  ASSERT_EQ(folders.training.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(with_json.training[i].key, folders.training[i].key);
    EXPECT_EQ(with_json.training[i].images, folders.training[i].images);
    EXPECT_EQ(with_json.training[i].label, folders.training[i].label);
  }
  check_case(folders.training[0], folders, &label_map_preset("brats21"));
}

TEST(Catalog, Brats2023NamingAndCustomModalityOrder) {
  TempDir dir;
  const std::string key = "BraTS-GLI-00001-000";
  fs::create_directories(dir / key);
  auto h = io::make_nifti_header({4, 4, 4}, io::DType::kUint8, Affine::identity());
  std::vector<std::uint8_t> zeros(64, 0);
  for (const char* m : {"t1c", "t1n", "t2f", "t2w", "seg"}) io::write_nifti(dir / key / (key + "-" + m + ".nii.gz"), h, zeros);
  Catalog c = open_catalog(dir.path());
  EXPECT_EQ(c.label_preset, "brats23");
  EXPECT_EQ(c.modalities, (std::vector<std::string>{"t2f", "t1n", "t1c", "t2w"}));
  EXPECT_EQ(c.training[0].images[0].filename(), key + "-t2f.nii.gz");
  CatalogOptions opt;
  opt.modalities = {"t1n", "t1c"};
  Catalog two = open_catalog(dir.path(), opt);
  ASSERT_EQ(two.training[0].images.size(), 2u);
  EXPECT_EQ(two.training[0].images[1].filename(), key + "-t1c.nii.gz");
}

TEST(Catalog, MissingFileIsReportedByCase) {
  TempDir dir;
  synthesize_dataset(tiny(dir.path(), "msd"));
  fs::remove(dir / "labelsTr" / "BRATS_002.nii.gz");
  expect_error_containing([&] { open_catalog(dir.path()); }, {"case BRATS_002", "label file", "does not exist"});
  TempDir b;
  synthesize_dataset(tiny(b.path(), "brats21"));
  fs::remove(b / "dataset.json");
  fs::remove(b / "BraTS2021_00001" / "BraTS2021_00001_t1ce.nii.gz");
  expect_error_containing([&] { open_catalog(b.path()); }, {"case BraTS2021_00001", "t1ce", "does not exist"});
}

TEST(Catalog, MalformedDatasetJsonIsNamed) {
  TempDir dir;
  io::write_file_atomic(dir / "dataset.json", std::string("{\"training\": [ {\"image\": 3"));
  expect_error_containing([&] { open_catalog(dir.path()); }, {"dataset.json", "malformed JSON"});
  io::write_file_atomic(dir / "dataset.json", std::string("{\"name\": \"x\"}"));
  expect_error_containing([&] { open_catalog(dir.path()); }, {"dataset.json", "training"});
  io::write_file_atomic(dir / "dataset.json", std::string("{\"training\": [{\"image\": 5, \"label\": \"a.nii\"}]}"));
  expect_error_containing([&] { open_catalog(dir.path()); }, {"dataset.json", "\"image\""});
}

TEST(Catalog, EmptyOrMissingFolder) {
  TempDir dir;
  expect_error_containing([&] { open_catalog(dir.path()); }, {dir.path().string(), "no cases found"});
  expect_error_containing([&] { open_catalog(dir / "absent"); }, {"absent", "does not exist"});
}

TEST(CaseCheck, ShapeMismatchBetweenModalitiesIsReportedByCase) {
  TempDir dir;
  synthesize_dataset(tiny(dir.path(), "brats21"));
  auto h = io::make_nifti_header({12, 10, 9}, io::DType::kInt16, Affine::identity());
  io::write_nifti(dir / "BraTS2021_00002" / "BraTS2021_00002_t2.nii.gz", h, std::vector<std::uint8_t>(12 * 10 * 9 * 2, 0));
  Catalog c = open_catalog(dir.path());
  expect_error_containing([&] { check_case(c.training[2], c, nullptr); }, {"case BraTS2021_00002", "12x10x9", "t2"});
}

TEST(CaseCheck, LabelShapeAndValuesAreChecked) {
  TempDir dir;
  synthesize_dataset(tiny(dir.path(), "msd"));
  Catalog c = open_catalog(dir.path());
  auto h = io::make_nifti_header({12, 10, 8}, io::DType::kUint8, Affine::identity());
  std::vector<std::uint8_t> lab(12 * 10 * 8, 0);
  lab[17] = 7;
  io::write_nifti(c.training[0].label, h, lab);
  expect_error_containing([&] { check_case(c.training[0], c, &label_map_preset("blog")); }, {"case BRATS_001", "label value 7"});
  auto h2 = io::make_nifti_header({12, 10, 7}, io::DType::kUint8, Affine::identity());
  io::write_nifti(c.training[1].label, h2, std::vector<std::uint8_t>(12 * 10 * 7, 0));
  expect_error_containing([&] { check_case(c.training[1], c, nullptr); }, {"case BRATS_002", "label shape 12x10x7"});
}

TEST(FileNaming, BratsNamesGiveKeyModalityAndPreset) {
  auto n = brats_naming("/d/BraTS2021_00006/BraTS2021_00006_t1ce.nii.gz");
  EXPECT_EQ(n.key, "BraTS2021_00006");
  EXPECT_EQ(n.modality, "t1ce");
  EXPECT_EQ(n.label_preset, "brats21");
  n = brats_naming("BraTS-GLI-00000-000-t2f.nii.gz");
  EXPECT_EQ(n.key, "BraTS-GLI-00000-000");
  EXPECT_EQ(n.modality, "t2f");
  EXPECT_EQ(n.label_preset, "brats23");
  EXPECT_EQ(brats_naming("BraTS2021_00006_seg.nii").label_preset, "brats21");
  EXPECT_EQ(brats_naming("BRATS_001.nii.gz").key, "");  // MSD: no modality in the name
  EXPECT_EQ(case_key_from_files({"x/BraTS2021_00006_flair.nii.gz", "x/BraTS2021_00006_t1.nii.gz"}), "BraTS2021_00006");
  EXPECT_EQ(case_key_from_files({"imagesTr/BRATS_001.nii.gz"}), "BRATS_001");
}

TEST(FileNaming, LabelPresetOfLooseFilesComesFromTheirDataset) {
  TempDir dir;
  synthesize_dataset(tiny(dir.path(), "msd"));
  EXPECT_EQ(label_preset_for_file(dir / "labelsTr" / "BRATS_001.nii.gz").preset, "blog");  // dataset.json one folder up
  TempDir b;
  synthesize_dataset(tiny(b.path(), "brats21"));
  EXPECT_EQ(label_preset_for_file(b / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz").preset, "brats21");
  EXPECT_NE(label_preset_for_file(b / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz").reason.find("BraTS 2018-2021"), std::string::npos);
  TempDir none;
  EXPECT_EQ(label_preset_for_file(none / "elsewhere.nii.gz").preset, "");  // no dataset.json, no BraTS name
}

}  // namespace
}  // namespace segscale::data
