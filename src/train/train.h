#pragma once
// segscale train: the case study's training (MONAI UNet, DiceLoss, Adam) from a sample store, on CPU or
// CUDA, resumable exactly, with MONAI-loadable weights. libtorch-free header: the CLI includes only this.
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace segscale::train {

struct TrainOptions {
  // A named preset (train/recipe.h) for the settings below marked [recipe]; the CLI applies it to every one its
  // flag was not given for (apply_recipe). Recorded in config.json.
  std::string recipe = "case-study";
  std::string model = "unet";        // [recipe] unet | segresnet | dynunet (model::network_names())
  // [recipe] MONAI constructor arguments of the model (a JSON object, as Network::config() writes them):
  // the recipe's (model_args), then --model-config's over them (a file, or an inline JSON object). The UNet
  // takes --channels/--strides/--res-units instead of recipe arguments.
  nlohmann::json model_args = nlohmann::json::object();
  std::string model_config;
  std::string loss = "dice";         // [recipe] dice | dicece | dicefocal (model::LossConfig)
  nlohmann::json loss_args = nlohmann::json::object();  // [recipe] MONAI loss arguments; --loss-config's over them
  std::string loss_config;           // a file, or an inline JSON object
  std::string optimizer = "adam";    // [recipe] adam | adamw | sgd
  double momentum = 0;               // [recipe] sgd
  bool nesterov = false;             // [recipe] sgd (needs momentum > 0)
  std::string schedule = "none";     // [recipe] none | cosine | poly, stepped per epoch (train/schedule.h)
  int warmup_epochs = 0;
  double min_lr = 0;                 // the cosine's eta_min
  std::string pipeline_preset = "case-study";  // [recipe] the chain of --data runs without --pipeline
  std::filesystem::path store, out;
  std::filesystem::path data, pipeline;  // instead of a store: raw NIfTI cases, the chain run on the fly
  std::string label_map;                 // --label-map: with --data, over the data's numbering; with --store, must be the store's
  // A --store prepared with another chain than the chain of a recipe the user named (recipe_chosen: --recipe given) is
  // refused (its chain would train silently instead of the recipe's); --store-chain trains on the store's chain anyway.
  bool store_chain = false;
  bool recipe_chosen = false;
  std::filesystem::path val_store;  // optional: validate on this store instead of a split of `store`
  // Optional starting weights (fine-tuning, or a Python loop's initial weights): a segscale model.pt/last.pt or
  // a MONAI state dict saved with torch.save; strict (model::load_weights). A resumed run takes its checkpoint's.
  std::filesystem::path init_weights;
  // Run length, as Hugging Face's num_train_epochs/max_steps and Lightning's max_epochs/max_steps: with neither,
  // one epoch; with one, that limit; with both, whichever is reached first. Both count the whole run
  // (a resumed run continues towards the same limits).
  std::optional<int> epochs;
  int batch = 2;                     // per process; 0: the plan's (nnU-Net stores)
  double lr = 1e-4;
  double weight_decay = 0;
  bool amsgrad = false;
  int val_every = 1;                 // epochs
  // Batches per epoch (nnU-Net: 250 iterations, cases drawn with replacement); 0: one pass over the training cases.
  // Only nnU-Net stores (segscale prep --plans) sample epochs of a fixed length so far.
  std::int64_t steps_per_epoch = 0;
  int val_steps = 50;                // --val-mode pseudo: validation batches per validation (nnU-Net: 50)
  bool final_val = true;             // nnU-Net stores: the fold's final validation at the end (train/final_validation.h)
  double val_fraction = 0.1;         // of cases (never of copies)
  // nnU-Net's cross-validation instead of --val-fraction: the fold ("0".."4", a larger number for nnU-Net's random
  // 80:20 split, "all"), from `splits` (nnU-Net's splits_final.json) or else nnU-Net's 5-fold split of the cases.
  std::string fold;
  std::filesystem::path splits;
  // crop (centre crop of val_roi, the case study), full (whole volume by sliding window; "sliding" = full), or pseudo
  // (nnU-Net's pseudo-Dice: tp/fp/fn summed over --val-steps sampled validation batches; nnU-Net stores only)
  std::string val_mode = "crop";
  std::array<std::int64_t, 3> val_roi{0, 0, 0};  // 0 = the pipeline's crop roi
  double sw_overlap = 0.25;
  std::uint64_t seed = 0;
  std::string device = "cpu";        // cpu or cuda
  int threads = 0;                   // torch intra-op threads, 0 = all cores
  int loader_threads = 2;
  std::optional<std::int64_t> max_steps;  // total optimiser steps of the run
  std::int64_t checkpoint_every = 0; // steps; 0 = at epoch ends and at the end only
  bool resume = false;
  bool overwrite = false;            // start afresh in a run folder that already holds a run
  bool auto_resume = false;          // resume when the checkpoint exists, else start (spot, requeue)
  // Where checkpoint.pt lives (default: out). When elsewhere (SageMaker's /opt/ml/checkpoints, synced to S3
  // and restored after a spot interruption), model.pt and metrics.jsonl are mirrored there too, so a run
  // restarted on a fresh machine gets them back.
  std::filesystem::path checkpoint_dir;
  bool amp = false;                  // autocast (CUDA: bf16 or fp16 with dynamic loss scaling; CPU: bf16), fp32 master weights
  std::string amp_dtype = "bf16";    // bf16 or fp16
  bool channels_last = false;        // 5-D weights and inputs in channels-last-3d layout (NDHWC), for cuDNN
  // Called on rank 0 after each checkpoint and each new best model.pt (a remote --out pushes its files).
  std::function<void()> on_saved;
  bool device_cache = false;         // --cache stores: every case resident on the device, batches built there
  std::string device_cache_mode = "full";  // full (every rank holds every case) or shard (MONAI partition_dataset)
  std::vector<int> channels{16, 32, 64, 128, 256};
  std::vector<int> strides{2, 2, 2, 2};
  int res_units = 2;
  double smooth_nr = 1e-5, smooth_dr = 1e-5;
  bool skip_bad = false;
  bool drop_last = false;
  bool quiet = false;
  double clip_grad_norm = 0;         // global L2 norm of the gradients clipped to this after backward (nnU-Net: 12); 0 off
  // An MLflow tracking server (http://HOST:PORT; MLflow's MLFLOW_TRACKING_URI when empty), its experiment and the
  // run's name there (MLFLOW_EXPERIMENT_NAME / MLFLOW_RUN_NAME, else "segscale" and the run folder's name).
  std::string mlflow, mlflow_experiment, mlflow_run_name;
  std::string backend = "auto";      // distributed: auto, gloo, nccl
  int timeout_s = 300;               // distributed: collective timeout
};

struct TrainResult {
  std::int64_t steps = 0;            // optimiser steps taken by this invocation (not counting a resumed run's past)
  double step_seconds = 0;           // wall time of this invocation's training loop (its steps, validations, checkpoints)
  std::int64_t total_steps = 0;      // steps of the whole run so far
  std::filesystem::path weights;     // the file a user should load: model.pt (best validation) or last.pt
  double best_dice = -1;             // best validation mean Dice (-1: never validated); nnU-Net stores: the best EMA of it
  std::string best_what = "best validation Dice";  // what best_dice is, for the summary line
  std::array<double, 3> best_per_class{0, 0, 0};
  double last_loss = 0;
  double samples_per_s = 0;          // this invocation's
  double data_wait_fraction = 0;
  double comm_wait_fraction = 0;     // share of step time spent waiting for gradient averaging
  std::int64_t device_cache_bytes = 0;  // memory held by --device-cache on this rank (0 without it)
  double seconds = 0;
  int rank = 0, world = 1;
  int stopped_by_signal = 0;         // SIGTERM/SIGINT/SIGUSR1 ended the run early (checkpoint saved), else 0
  std::filesystem::path checkpoint;  // checkpoint.pt of the run
  std::vector<std::string> tracking; // rank 0: where the TensorBoard file and the MLflow run are, and MLflow's delivery report
};

// Throws UsageError for bad options (naming the flag and its range) and Error for bad data, naming the file or
// sample. Refuses a run folder that already holds a run unless `resume` or `overwrite` is set. On SIGTERM,
// SIGINT or SIGUSR1 (all ranks agree on the step) it checkpoints at the next step boundary and returns with
// stopped_by_signal set.
TrainResult run_training(const TrainOptions& options);

}  // namespace segscale::train
