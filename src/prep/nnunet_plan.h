#pragma once
// nnU-Net v2's default experiment planner (nnunetv2 2.8.1, ExperimentPlanner with the 8 GB target and the
// PlainConvUNet; experiment_planners/default_experiment_planner.py and network_topology.py) on a dataset
// fingerprint: transpose, target spacing, median shape, the 2d, 3d_fullres and (when the patch covers less than
// a quarter of the median case) 3d_lowres configurations with their patch, network topology, VRAM-estimate
// shrink loop and batch size, written as nnU-Net's nnUNetPlans.json. Arithmetic only: the memory estimate is
// dynamic-network-architectures' compute_conv_feature_map_size worked out, no network is built. libtorch-free.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "prep/nnunet_fingerprint.h"

namespace segscale::prep {

// What the planner reads from dataset.json.
struct PlanDataset {
  std::string name;                        // e.g. Dataset137_BraTS2021
  std::vector<std::string> channel_names;  // in channel order: they pick each channel's normalisation
  int num_label_keys = 0;                  // len(dataset.json "labels"), background and regions included
  int num_training = 0;
};

// get_pool_and_conv_props(spacing, patch, 4, 999999) for 2 or 3 axes: poolings per axis, the stride of each
// stage (the first [1,...]), the kernel of each stage (the last the bottleneck's 3s), the patch padded up to a
// multiple of 2^poolings. The patch may be fractional (a median shape), as nnU-Net allows.
struct Topology {
  std::vector<int> num_pool_per_axis;
  std::vector<std::vector<int>> strides, kernel_sizes;
  std::vector<std::int64_t> patch_size, must_be_divisible_by;
};
Topology nnunet_topology(const std::vector<double>& spacing, const std::vector<double>& patch, int min_feature_map_size = 4,
                         int max_numpool = 999999);

// PlainConvUNet(deep_supervision=False).compute_conv_feature_map_size(patch): the planner's VRAM estimate.
std::int64_t conv_feature_map_size(const std::vector<std::int64_t>& patch, const std::vector<std::vector<int>>& strides,
                                   const std::vector<int>& features, int num_classes);

// nnUNetPlans.json for the dataset, key for key as ExperimentPlanner.plan_experiment writes it.
nlohmann::ordered_json plan_experiment(const DatasetFingerprint& fingerprint, const PlanDataset& dataset);

// nnU-Net's normalisation class for a channel name: CT, noNorm, zscore, rescale_to_0_1, rgb_to_0_1 (case-folded),
// any other ZScoreNormalization.
std::string normalization_scheme(const std::string& channel_name);

}  // namespace segscale::prep
