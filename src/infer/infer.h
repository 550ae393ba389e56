#pragma once
// segscale infer: a trained model on new scans, written back on each scan's own grid with its header, so the
// segmentation overlays the scan in 3D Slicer or ITK-SNAP. libtorch-free header.
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace segscale::infer {

struct InferOptions {
  std::filesystem::path model;                 // RUN/model.pt (MONAI-format weights), or an nnU-Net results folder
  // An nnU-Net results folder: its folds (default: every fold_* holding the checkpoint), configuration (default: from
  // the folder's name) and checkpoint file.
  std::vector<std::string> folds;
  std::string configuration;
  std::string checkpoint = "checkpoint_final.pth";
  std::filesystem::path config;                // default: config.json beside the model
  std::vector<std::filesystem::path> images;   // one case: a 4-D file or one file per modality ...
  std::filesystem::path out;                   // ... written to this .nii.gz
  std::filesystem::path data, out_dir;         // or a whole dataset folder to a folder of <case>.nii.gz
  std::filesystem::path preview;               // optional PNG (one case) or "yes" per case in out_dir; "no" for none
  bool probabilities = false;                  // also write <out>_probabilities.nii.gz (3 float channels)
  std::string device = "cpu";
  int threads = 0;
  std::optional<double> overlap;              // default: the run's sw_overlap (what it validated with), else 0.25
  int sw_batch = 1;
  std::string blend = "constant";              // or gaussian
  std::string tta = "none";                    // or flip: mean sigmoid over the 8 flips of the spatial axes (infer/tta.h)
  std::string label_map;                       // default: the training run's
  bool quiet = false;
  bool skip_bad = false;                       // with data: a case that fails is reported and left out
};

struct InferCaseResult {
  std::string key;
  std::filesystem::path out;
  std::array<std::uint64_t, 3> voxels{};  // predicted WT, TC, ET voxels on the input grid
  double seconds = 0;
};

// False for an empty --preview or one of no, false, off, 0.
bool wants_preview(const std::filesystem::path& preview);

// Throws UsageError for bad options, Error naming the file for unreadable inputs or a model that does not fit.
std::vector<InferCaseResult> run_infer(const InferOptions& options);

}  // namespace segscale::infer
