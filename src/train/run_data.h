#pragma once
// The data side of a run's setup: the training source (a store, or a raw dataset with the chain run per
// sample), its transform chain, the validation crop, and the split by case. libtorch-free.
#include <filesystem>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "data/catalog.h"
#include "loader/nnunet_loader.h"
#include "store/store.h"
#include "train/split.h"
#include "train/train.h"
#include "transforms/label_map_choice.h"
#include "transforms/pipeline.h"

namespace segscale::train {

struct RunData {
  std::shared_ptr<store::StoreReader> store;   // set for --store runs
  std::shared_ptr<data::Catalog> catalog;      // set for --data runs
  std::shared_ptr<store::StoreReader> val_store;  // --val-store, else `store` (null for --data runs)
  nlohmann::json settings;                     // the store's settings (mode, pipeline, dataset), or the raw run's
  transforms::Pipeline pipeline;
  std::string label_map_note;                  // "label map P (TC=...): why", printed at the start of the run
  bool cache = false;                          // a --cache store: random stages run per sample
  transforms::Shape3 roi{128, 128, 64};        // validation crop / sliding-window roi: --val-roi, else the chain's crop
  Split split;                                 // indices into the store's samples (or the catalog's training cases)
  std::vector<std::string> train_cases, val_cases;  // the split's case keys, sorted (splits.json)
  std::vector<Fold> folds;                     // with --fold: every fold of the cross-validation (splits.json holds them all)
  std::vector<std::string> warnings;           // what the user should know before the run starts (one line each)
  int in_channels = 4;                         // the data's modalities
  std::filesystem::path source;                // what --store or --data named
  // A store of nnU-Net's preprocessed cases (segscale prep --plans): its plan and what the loader needs from it.
  struct Nnunet {
    nlohmann::json plans;                      // the whole plans file
    std::string dataset_json;                  // dataset.json's text (its key order matters)
    std::string configuration;                 // e.g. 3d_fullres
    std::vector<std::vector<int>> regions;     // label values per output channel: TC, WT, ET
    std::vector<std::string> region_names;     // "TC", "WT", "ET"
    std::vector<bool> use_mask_for_norm;       // per channel
    std::array<std::int64_t, 3> patch{};       // the plan's patch
    int batch_size = 2;                        // the plan's
    bool batch_dice = false;                   // the plan's
    nlohmann::json arch;                       // configurations[configuration].architecture.arch_kwargs
  };
  std::optional<Nnunet> nnunet;
};

// Opens the store or dataset and splits it. `fallback_pipeline`: the chain for --data runs without --pipeline
// (the recipe's; the case study's when null). Throws Error for unreadable data and for an empty training split.
RunData open_run_data(const TrainOptions& o, const transforms::Pipeline* fallback_pipeline = nullptr);

// Whether two chains are the same but for their crop sizes and label map (a store prepared with a recipe's chain
// for small data crops smaller, and the map follows the data): the steps, their kinds and every other setting.
bool same_chain_but_crops(const transforms::Pipeline& a, const transforms::Pipeline& b);

// The nnU-Net loader's settings for this run's training batches (an nnU-Net store's run): the plan's patch,
// regions and masks, the run's batch, seed and loader threads.
loader::NnunetLoaderOptions nnunet_loader_options(const TrainOptions& o, const RunData& data, int rank);

// Writes the split as nnU-Net's splits_final.json does (a list of folds {"train": [...], "val": [...]} of case keys:
// with --fold every fold of the cross-validation, else the run's one) and returns the line the run prints: "split: 3 training cases, 1 validation case -> PATH".
std::string write_splits(const std::filesystem::path& path, const RunData& data);

}  // namespace segscale::train
