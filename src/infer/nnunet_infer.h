#pragma once
// segscale infer for runs of nnU-Net's recipe (config.json "store_mode": "nnunet"): as nnUNetPredictor predicts a
// case at the plan's spacing: nnU-Net's preprocessing with the run's plans.json and dataset.json, its
// sliding-window prediction (infer/nnunet_predict.h: Gaussian importance, step 0.5, the 8 mirrorings averaged as
// logits), sigmoid, regions to labels by dataset.json's regions_class_order (each region's label painted over the
// earlier ones where its probability is above 0.5), the crop reverted (0 outside) and the axes transposed back,
// written on the input's own grid and header. The labels are the dataset's own numbering.
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "infer/infer.h"
#include "model/network.h"
#include "prep/nnunet_preprocess.h"

namespace segscale::infer {

struct NnunetRun {
  std::vector<std::shared_ptr<model::Network>> nets;  // one per fold: their logits are averaged (nnU-Net's ensemble of folds)
  std::vector<std::string> folds;                     // what each net is (for the log)
  prep::NnunetPreprocessing preprocessing;
  std::vector<std::int64_t> patch;
  std::vector<int> channel_of_region;    // per dataset.json region: the network's output channel
  std::vector<int> regions_class_order;  // per dataset.json region: the label it paints
};

// Throws Error naming the file for a run folder without plans.json / dataset.json or with a plan it cannot use.
NnunetRun load_nnunet_run(const nlohmann::json& config, const std::filesystem::path& config_path, std::shared_ptr<model::Network> net);

// An nnU-Net results folder (what nnUNetv2_train writes and nnUNetv2_predict -m / initialize_from_trained_model_folder
// read): plans.json, dataset.json and fold_*/checkpoint_final.pth (every fold found, or `folds`), the configuration
// from the folder's name (TRAINER__PLANS__CONFIGURATION) unless given. PlainConvUNet from the plan, each fold's
// network_weights loaded strictly; outputs in dataset.json's region order. Throws Error naming the file.
NnunetRun load_nnunet_results_folder(const std::filesystem::path& folder, const std::vector<std::string>& folds, const std::string& configuration,
                                     const std::string& checkpoint, const torch::Device& device);

// True for a folder holding plans.json, dataset.json and a fold_* folder: an nnU-Net results folder.
bool is_nnunet_results_folder(const std::filesystem::path& p);

InferCaseResult nnunet_infer_case(const NnunetRun& run, const std::vector<std::filesystem::path>& images, const std::filesystem::path& out,
                                  const torch::Device& device, const std::string& key);

}  // namespace segscale::infer
