#pragma once
// Deterministic BraTS-like phantoms: a brain-shaped foreground with four MRI contrasts, a smooth bias
// field and noise, zero background, and a tumour of nested regions (edema, necrotic core, enhancing rim)
// at a random position and size. A model can learn them, and every file is a real NIfTI image.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace segscale::data {

// Tissue label numbering used for the phantom's segmentation in each layout.
enum class SynthLayout { kMsd, kBrats21, kNnunet };  // kNnunet: nnU-Net's Dataset137 form of BraTS

struct Phantom {
  std::array<std::int64_t, 3> shape{};
  // 4 channels (FLAIR, T1, T1ce, T2), each X*Y*Z floats in NIfTI disk layout (x fastest), RAS voxel order.
  std::vector<float> image;
  std::vector<std::uint8_t> label;  // X*Y*Z label values in the layout's numbering
};

// The phantom for case `index` of a dataset with `seed`: a pure function of its arguments.
Phantom make_phantom(const std::array<std::int64_t, 3>& shape, std::uint64_t seed, int index, SynthLayout layout);

struct SynthOptions {
  std::filesystem::path out;
  int cases = 4;
  std::array<std::int64_t, 3> shape{240, 240, 155};
  // "msd" (dataset.json + imagesTr 4-D float32), "brats21" (case folders, int16) or "nnunet" (nnU-Net's raw layout as its
  // Dataset137 conversion writes BraTS: imagesTr/CASE_0000..0003 = T1, T1ce, T2, FLAIR, labels 1 edema, 2 necrotic
  // core, 3 enhancing, dataset.json v2 with the three regions and regions_class_order)
  std::string layout = "msd";
  std::string orientation = "RAS";  // "RAS" or "LPS" (stored with x and y reversed, like BraTS files)
  std::uint64_t seed = 0;
  int threads = 0;  // 0 = all cores
  bool quiet = false;
};

// Writes the dataset (NIfTI files and dataset.json) under options.out, creating it. Existing files of the
// same names are replaced atomically. Throws UsageError for bad options, Error for I/O failures.
// Returns the case keys written.
std::vector<std::string> synthesize_dataset(const SynthOptions& options);

}  // namespace segscale::data
