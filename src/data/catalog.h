#pragma once
// Dataset catalogs: which cases a dataset holds and where their files are.
//   MSD layout:   ROOT/dataset.json with "training" [{image, label}] and "test" lists; an image entry is one
//                 (4-D) file or a list of files, one per modality.
//   BraTS layout: ROOT/<CASE>/<CASE>_<modality>.nii.gz ... <CASE>_seg.nii.gz (2021: flair,t1,t1ce,t2), or
//                 <CASE>-<modality>.nii.gz ... <CASE>-seg.nii.gz (2023: t2f,t1n,t1c,t2w). Case folders
//                 without a segmentation are listed as test cases.
//   nnU-Net v2:   ROOT/dataset.json with "channel_names", imagesTr/CASE_0000.nii.gz ..., labelsTr/CASE.nii.gz,
//                 imagesTs/ (data/nnunet_dataset.h).
#include <filesystem>
#include <string>
#include <vector>

namespace segscale::data {

enum class Layout { kMsd, kBrats, kNnunet };
const char* layout_name(Layout l);

struct Case {
  std::string key;                                // e.g. "BRATS_001", "BraTS2021_00006"
  std::vector<std::filesystem::path> images;      // one 4-D file, or one file per modality in channel order
  std::filesystem::path label;                    // empty for unlabelled (test) cases
};

struct CatalogOptions {
  std::string layout = "auto";           // "auto" (dataset.json if present: nnU-Net's or MSD's; else BraTS folders), "msd", "brats", "nnunet"
  std::vector<std::string> modalities;   // BraTS layout: file suffixes in channel order; empty = detect
  // List a case even when one of its files is missing, with the path where the file should be (BraTS: the
  // .nii.gz name), instead of throwing: for `prep --skip-bad`, which records such a case as bad and goes on.
  bool allow_missing_files = false;
  // nnU-Net's layout with labels that are not BraTS's regions (e.g. liver, tumour): listed, with no label preset.
  // For what does not train TC/WT/ET: nnU-Net's planning and preprocessing.
  bool any_labels = false;
};

struct Catalog {
  std::filesystem::path root;
  Layout layout = Layout::kMsd;
  std::vector<std::string> modalities;  // channel names in order
  std::vector<Case> training;           // labelled cases
  std::vector<Case> test;               // unlabelled cases
  std::string label_preset;             // the preset this dataset's numbering suggests: blog, brats21, brats23
  std::string label_preset_reason;      // why, for the user: e.g. "BraTS 2023 file names (1 NCR, 2 ED, 3 ET)"
  std::vector<std::string> label_preset_also;  // other readings the same label values allow (MSD Task01: msd)

  // Finds a training or test case by key; nullptr if absent.
  const Case* find(const std::string& key) const;
};

// Opens the dataset at `root`. Every listed file must exist (unless options.allow_missing_files). Throws Error
// naming the case and file for a missing file, and naming dataset.json for malformed JSON, missing keys, duplicate case keys; throws
// Error if no case is found.
Catalog open_catalog(const std::filesystem::path& root, const CatalogOptions& options = {});

// The case key for an image path: its file name without .nii.gz / .nii.
std::string case_key_from_path(const std::filesystem::path& p);

// What a loose file's name shows under BraTS naming: <KEY>_<m>.nii.gz with m in flair, t1, t1ce, t2, seg (2021,
// preset brats21) or <KEY>-<m>.nii.gz with m in t2f, t1n, t1c, t2w, seg (2023, brats23). All fields empty for
// other names.
struct FileNaming {
  std::string key, modality, label_preset;
};
FileNaming brats_naming(const std::filesystem::path& file);

// The case key for a case given as files: <KEY> under BraTS naming, else the first file's case_key_from_path.
std::string case_key_from_files(const std::vector<std::filesystem::path>& images);

// The label preset for loose files of a dataset, as open_catalog would choose it: from the dataset.json in the
// file's folder or the one above (MSD's imagesTr/), else from BraTS naming; empty when neither shows it.
struct Numbering {
  std::string preset, reason;    // as Catalog::label_preset and label_preset_reason
  std::vector<std::string> also;  // as Catalog::label_preset_also
};
Numbering label_preset_for_file(const std::filesystem::path& file);

}  // namespace segscale::data
