#pragma once
// Named pipelines, in one place: what `--pipeline NAME` means for apply, prep and train, and the chain each
// training recipe uses. libtorch-free.
//
//   case-study   the case study's chain (Pipeline::case_study(): spacing 1.5x1.5x2 mm, RAS, 128x128x64 random
//                crop, flip x p 0.5, NormalizeIntensity nonzero channel-wise, scale/shift 0.1 p 0.5); label map blog.
//                Validation: a 128x128x64 centre crop (--val-mode crop).
//   monai-brats  MONAI's BraTS tutorial (brats_segmentation_3d): Orientationd RAS, Spacingd 1.0 mm, RandSpatialCropd
//                224x224x144 (random_size False), RandFlipd on axis 0, 1 and 2 (prob 0.5 each, three draws),
//                NormalizeIntensityd nonzero channel-wise, RandScaleIntensityd factors 0.1 prob 1.0,
//                RandShiftIntensityd offsets 0.1 prob 1.0; label map blog (the tutorial's
//                ConvertToMultiChannelBasedOnBratsClassesd on Task01). Validation: the whole volume (--val-mode full).
//   nnunet       nnU-Net's data path as MONAI's DynUNet pipeline builds it: RAS, spacing 1.0 mm (BraTS' median; take
//                `segscale plan` for other data), z-score per channel over the nonzero voxels before cropping,
//                RandCropByPosNegLabeld 128x128x128 (nnU-Net v1's BraTS patch) with pos 1 neg 2 (nnU-Net's 1/3
//                foreground oversampling), num_samples 1, allow_smaller, then mirroring on each axis (p 0.5,
//                three draws); label map msd. Validation: the whole volume (--val-mode full).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "transforms/pipeline.h"

namespace segscale::transforms {

// The JSON of preset `name` (Pipeline::from_json accepts it). Throws UsageError naming the presets for an
// unknown name. The trainer's recipes take their chain from here.
nlohmann::ordered_json pipeline_preset(const std::string& name);
std::vector<std::string> pipeline_preset_names();
bool is_pipeline_preset(const std::string& name);
// The validation mode each preset's source used: "crop" (centre crop of the training roi) or "full" (the whole
// volume by sliding window).
std::string pipeline_preset_val_mode(const std::string& name);

// `--pipeline NAME|FILE`: a preset name, else a JSON file (a file that happens to be named like a preset: write
// ./NAME). Empty: the case study's chain. A preset's label map is a default: the commands take the data's
// numbering for a preset as for the default chain (a file's "label_map" is authoritative). Throws as Pipeline::from_file for a bad file.
Pipeline pipeline_from_arg(const std::string& arg);

}  // namespace segscale::transforms
