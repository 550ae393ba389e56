#pragma once
// nnU-Net v2's raw dataset layout (nnunetv2 2.8.1, documentation/dataset_format.md; the BraTS conversion
// dataset_conversion/Dataset137_BraTS21.py):
//   DatasetNNN_Name/dataset.json   {"channel_names": {"0": "T1", ...}, "labels": {"background": 0, ...},
//                                   "numTraining": N, "file_ending": ".nii.gz", optional "regions_class_order"}
//   DatasetNNN_Name/imagesTr/CASE_0000.nii.gz ... CASE_000{C-1}.nii.gz   one file per channel
//   DatasetNNN_Name/labelsTr/CASE.nii.gz
//   DatasetNNN_Name/imagesTs/CASE_0000.nii.gz ...                        optional, unlabelled
// A dataset.json with "channel_names" is nnU-Net's (MSD's has "modality" and a "training" list).
//
// segscale trains BraTS's three regions, so the labels must say which values make TC, WT and ET: nnU-Net's
// region form ("whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3], as Dataset137 writes) or
// plain labels named as BraTS names them (edema, non-enhancing / necrotic, enhancing). The preset with exactly
// those channels is the dataset's label map (Dataset137: msd). Other label sets are refused, naming them.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/catalog.h"

namespace segscale::data {

// True for a v2 dataset.json (it has "channel_names").
bool is_nnunet_dataset_json(const nlohmann::json& j);

// Lists the dataset's cases (training: every labelsTr file; test: imagesTs) and its label map. Throws Error
// naming dataset.json or the case and file: a missing channel file (unless allow_missing: then the path where it
// should be), numTraining that disagrees with labelsTr, labels that are not BraTS's regions (unless any_labels:
// nnU-Net's planning and preprocessing take any label set; the catalog then has no label preset).
Catalog open_nnunet(const std::filesystem::path& root, const nlohmann::json& dataset_json, bool allow_missing, bool any_labels = false);

}  // namespace segscale::data
