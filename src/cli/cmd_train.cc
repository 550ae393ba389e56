// segscale train: see src/train/train.h. This file stays libtorch-free.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

#include <cstring>
#include <optional>

#include "cli/commands.h"
#include "env/job_environment.h"
#include "env/restart.h"
#include "env/world.h"
#include "storage/storage.h"
#include "io/json_file.h"
#include "train/recipe.h"
#include "train/resume_settings.h"
#include "train/run_sync.h"
#include "train/train.h"
#include "util/plural.h"
#include "util/stop_signal.h"

namespace segscale::cli {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a network (UNet, SegResNet, DynUNet; --recipe) on a sample store (CPU or CUDA; data-parallel under segscale launch or torchrun-style variables)");
  auto o = std::make_shared<train::TrainOptions>();
  cmd->add_option("--store", o->store, "Sample store from segscale prep");
  cmd->add_option("--data", o->data, "Instead of a store: a raw dataset, the whole transform chain run per sample (the case study's single-GPU mode)");
  cmd->add_option("--pipeline", o->pipeline, "With --data: a chain preset (case-study, monai-brats, nnunet) or a pipeline JSON file (default: the recipe's chain)");
  cmd->add_option("--label-map", o->label_map, "With --data: label-map preset (blog, msd, brats21, brats23) over the data's numbering; "
                  "with --store: must be the store's (default: the data's, or the store's)");
  cmd->add_option("--out", o->out, "Run folder: model.pt (best), last.pt, checkpoint.pt, config.json, metrics.jsonl; or s3://BUCKET/PREFIX "
                  "(written through a local staging folder, pushed at each checkpoint and at the end)")->required();
  auto stage_dir = std::make_shared<std::filesystem::path>();
  auto val_roi = std::make_shared<std::vector<std::int64_t>>();
  cmd->add_option("--stage-dir", *stage_dir, "With an s3:// --out: the local staging folder (default $TMPDIR/segscale-runs/BUCKET/PREFIX)");
  cmd->add_option("--init-weights", o->init_weights, "Start from these weights instead of the seed's initialisation: a segscale model.pt "
                  "or a MONAI state dict (torch.save(net.state_dict(), F), or {\"state_dict\": ...}) of the same model; --resume takes the checkpoint's");
  cmd->add_option("--val-store", o->val_store, "Validate on this store instead of a split of --store");
  cmd->add_option("--epochs", o->epochs, "Passes over the training split; with --max-steps, whichever limit comes first ends the run (default when --max-steps is not given either: monai-brats 300, nnunet 1000, other recipes 1)");
  auto by_recipe = [](const char* flag) { return " (default, by --recipe: " + train::recipe_defaults(flag) + ")"; };
  cmd->add_option("--batch", o->batch, "Batch size per process" + by_recipe("--batch"));
  cmd->add_option("--lr", o->lr, "Learning rate, the schedule's base" + by_recipe("--lr"));
  cmd->add_option("--weight-decay", o->weight_decay, "Weight decay as torch.optim's (L2 for adam and sgd, decoupled for adamw)" + by_recipe("--weight-decay"));
  cmd->add_flag("--amsgrad", o->amsgrad, "Adam's AMSGrad variant (MONAI's BraTS tutorial)");
  cmd->add_option("--val-every", o->val_every, "Validate every N epochs")->capture_default_str();
  cmd->add_option("--val-fraction", o->val_fraction, "Fraction of cases held out for validation (split by case)" + by_recipe("--val-fraction"));
  cmd->add_option("--fold", o->fold,
                  "nnU-Net's cross-validation instead of --val-fraction: fold 0-4 of its 5-fold split (KFold, seed 12345, sorted cases; "
                  "splits.json then holds all five, as splits_final.json), a larger number for its random 80:20 split, or all");
  cmd->add_option("--splits", o->splits, "With --fold: the folds from this splits_final.json (nnU-Net's own, or segscale plan's)");
  cmd->add_option("--val-mode", o->val_mode, "crop: centre crop (the case study); full: whole volumes by sliding window, as MONAI's "
                  "sliding_window_inference (sliding: the former name of full); pseudo: nnU-Net's pseudo-Dice over --val-steps sampled validation "
                  "batches (nnU-Net stores)" + by_recipe("--val-mode"))
      ->transform(CLI::Transformer(std::map<std::string, std::string>{{"sliding", "full"}}))
      ->check(CLI::IsMember({"crop", "full", "pseudo"}));
  cmd->add_flag("--store-chain", o->store_chain, "Train a --store prepared with another chain than the named --recipe's on the store's chain "
                "(without it such a store is refused; without --recipe the store's chain stands)");
  cmd->add_option("--val-roi", *val_roi, "Validation window X,Y,Z: the centre crop (crop) or the sliding window (full); default: the "
                  "chain's training crop (MONAI's BraTS tutorial validates with 240,240,160)")->delimiter(',')->expected(3);
  cmd->add_flag("--final-val,!--no-final-val", o->final_val, "nnU-Net stores: at the end, predict every validation case whole with "
                "nnU-Net's predictor and write RUN/validation_summary.json (nnU-Net's validation/summary.json), as nnU-Net's final validation of a fold (default: on)");
  cmd->add_option("--val-steps", o->val_steps, "--val-mode pseudo: validation batches per validation (nnU-Net: 50)")->capture_default_str();
  cmd->add_option("--steps-per-epoch", o->steps_per_epoch, "Batches per epoch, cases drawn with replacement as nnU-Net's sampler does "
                  "(nnU-Net stores; 0: one pass over the training cases)" + by_recipe("--steps-per-epoch"));
  cmd->add_option("--seed", o->seed, "Seed of the initialisation, data order and augmentation")->capture_default_str();
  cmd->add_option("--device", o->device, "Where the model trains")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  cmd->add_option("--threads", o->threads, "Compute threads per process (0 = all cores)")->capture_default_str();
  cmd->add_option("--loader-threads", o->loader_threads, "Data loading threads")->capture_default_str();
  cmd->add_option("--max-steps", o->max_steps, "Optimiser steps of the whole run (resumed runs included); alone, as many epochs as it takes, as Hugging Face's max_steps");
  cmd->add_option("--checkpoint-every", o->checkpoint_every, "Also checkpoint every N steps (0: at epoch ends)")->capture_default_str();
  cmd->add_flag("--resume", o->resume, "Continue from OUT/checkpoint.pt exactly where it stopped");
  cmd->add_flag("--overwrite", o->overwrite, "Start afresh in an --out folder that already holds a run (deletes its run files)");
  cmd->add_flag("--auto-resume", o->auto_resume, "Resume when the checkpoint exists, else start afresh (spot instances, requeued jobs)");
  cmd->add_option("--checkpoint-dir", o->checkpoint_dir, "Folder of checkpoint.pt (default: --out); model.pt and metrics.jsonl are mirrored there");
  cmd->add_flag("--amp", o->amp, "Mixed precision: autocast on CUDA (bf16, or fp16 with dynamic loss scaling) or CPU (bf16); fp32 master weights");
  cmd->add_flag("--device-cache", o->device_cache,
                "--cache stores: hold every training and validation case in the device's memory (store dtype, packed labels) and "
                "build each batch there (crop, flip, normalise, scale, shift as batched tensor ops); the same samples as the host loader");
  cmd->add_option("--device-cache-mode", o->device_cache_mode,
                  "full: every rank holds every case (DistributedSampler order, as without the cache); shard: each rank holds only its "
                  "partition (MONAI partition_dataset: cases rank, rank+world, ...) and shuffles within it, so ranks never exchange cases")
      ->check(CLI::IsMember({"full", "shard"}))->capture_default_str();
  cmd->add_flag("--channels-last", o->channels_last, "Weights and inputs in channels-last-3d layout (NDHWC): the same results, often faster with cuDNN on CUDA");
  cmd->add_option("--amp-dtype", o->amp_dtype, "Autocast dtype: bf16, or fp16 with dynamic loss scaling" + by_recipe("--amp-dtype"))
      ->check(CLI::IsMember({"bf16", "fp16"}));
  cmd->add_option("--channels", o->channels, "UNet channels per level")->delimiter(',')->capture_default_str();
  cmd->add_option("--strides", o->strides, "UNet strides")->delimiter(',')->capture_default_str();
  cmd->add_option("--res-units", o->res_units, "UNet residual units")->capture_default_str();
  cmd->add_flag("--skip-bad", o->skip_bad, "Skip corrupt samples with a warning instead of stopping");
  cmd->add_flag("--drop-last", o->drop_last, "Drop the uneven tail of an epoch instead of padding it (DistributedSampler)");
  cmd->add_option("--backend", o->backend, "Distributed backend")->check(CLI::IsMember({"auto", "gloo", "nccl"}))->capture_default_str();
  cmd->add_option("--timeout", o->timeout_s, "Distributed collective timeout, seconds")->capture_default_str();
  cmd->add_flag("--quiet", o->quiet, "No progress bar");
  cmd->add_option("--mlflow", o->mlflow,
                  "MLflow tracking server, http://HOST:PORT (default: $MLFLOW_TRACKING_URI; a resumed run: the one in RUN/mlflow.json): "
                  "params, metrics, tags and artifacts are logged there too; a server that is down or slow never stops training");
  cmd->add_option("--mlflow-experiment", o->mlflow_experiment, "MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME, else segscale)");
  cmd->add_option("--mlflow-run-name", o->mlflow_run_name, "MLflow run name (default: $MLFLOW_RUN_NAME, else the run folder's name)");
  static bool sagemaker = false;  // acted on before parsing (cli/sagemaker_train.h)
  cmd->add_flag("--sagemaker", sagemaker, "SageMaker mode: options from the Training job's files under /opt/ml (the default when they exist and no --store, --data or --out is given)");
  // Recipes and what they set (train/recipe.cc); each setting's own flag overrides the recipe's.
  cmd->add_option("--recipe", o->recipe, "Preset of model, loss, optimizer, schedule, AMP (CUDA), validation, batch and chain: case-study "
                  "(the blog's UNet), monai-brats (MONAI's BraTS tutorial: SegResNet), nnunet (nnU-Net's own trainer on a store of its "
                  "preprocessed cases: segscale plan, then prep --plans), monai-dynunet (MONAI's DynUNet pipeline); flags override it")
      ->check(CLI::IsMember(train::recipe_names()))->capture_default_str();
  cmd->add_option("--model", o->model, "Network: unet, segresnet, dynunet or plainconvunet (nnU-Net's)" + by_recipe("--model"));
  cmd->add_option("--model-config", o->model_config, "The model's MONAI constructor arguments: a JSON file or an inline JSON object, "
                  "over the recipe's (e.g. '{\"init_filters\": 8}'); recorded in config.json as \"model\"");
  cmd->add_option("--loss", o->loss, "Loss as MONAI's: dice (DiceLoss), dicece (DiceCELoss), dicefocal (DiceFocalLoss); or nnU-Net's dc_and_bce "
                  "(DC_and_BCE_loss: BCE + memory-efficient soft Dice over sigmoid regions; --loss-config batch for batch Dice)" + by_recipe("--loss"))
      ->check(CLI::IsMember({"dice", "dicece", "dicefocal", "dc_and_bce"}));
  cmd->add_option("--clip-grad-norm", o->clip_grad_norm, "Clip the gradients' global L2 norm to this after each backward pass (nnU-Net: 12; 0: off)")
      ->capture_default_str();
  cmd->add_option("--loss-config", o->loss_config, "The loss's MONAI arguments (sigmoid, softmax, squared_pred, include_background, batch, "
                  "smooth_nr, smooth_dr, lambda_dice, lambda_ce, lambda_focal, gamma, alpha): a JSON file or inline object, over the recipe's");
  cmd->add_option("--optimizer", o->optimizer, "adam, adamw or sgd" + by_recipe("--optimizer"))->check(CLI::IsMember({"adam", "adamw", "sgd"}));
  cmd->add_option("--momentum", o->momentum, "SGD momentum" + by_recipe("--momentum"));
  cmd->add_flag("--nesterov,!--no-nesterov", o->nesterov, "SGD with Nesterov momentum (nnunet recipe)");
  cmd->add_option("--schedule", o->schedule, "Learning-rate schedule, stepped per epoch: none, cosine (CosineAnnealingLR over the run's epochs), "
                  "poly (nnU-Net's (1 - epoch/epochs)^0.9)" + by_recipe("--schedule"))->check(CLI::IsMember({"none", "cosine", "poly"}));
  cmd->add_option("--warmup-epochs", o->warmup_epochs, "Linear warm-up from 0 over this many epochs before the schedule (MONAI's WarmupCosineSchedule)")
      ->capture_default_str();
  cmd->add_option("--min-lr", o->min_lr, "The cosine schedule's floor (eta_min)")->capture_default_str();
  cmd->add_option("--sw-overlap", o->sw_overlap, "--val-mode full: window overlap" + by_recipe("--sw-overlap"));
  cmd->footer("Run length: --epochs alone, --max-steps alone, or both (the first limit reached ends the run); neither: the recipe's "
              "(monai-brats 300 epochs, nnunet 1000 of 250 steps), else 1 epoch.\n" +
              label_map_help());
  cmd->callback([o, stage_dir, val_roi, cmd] {
    if (!val_roi->empty()) {
      for (std::int64_t v : *val_roi)
        if (v < 1) throw UsageError(fmt::format("--val-roi {}: three positive sizes X,Y,Z", fmt::join(*val_roi, ",")));
      o->val_roi = {(*val_roi)[0], (*val_roi)[1], (*val_roi)[2]};
    }
    train::apply_recipe(*o, [cmd](const std::string& flag) { return cmd->get_option(flag)->count() > 0; });
    o->recipe_chosen = cmd->get_option("--recipe")->count() > 0;
    // A remote --out: train into a local staging folder that RunSync mirrors (see train/run_sync.h).
    std::optional<train::RunSync> sync;
    const env::World world = env::world_from_job(env::JobEnvironment::from_process()).value_or(env::World{});
    const bool lead = world.rank == 0;
    if (world.restart_count > 0) {  // torchrun restarted the group: continue this job's run (see env/restart.h)
      const auto plan = env::plan_restart(world, (o->checkpoint_dir.empty() ? o->out : o->checkpoint_dir) / "checkpoint.pt", o->out,
                                          storage::is_url(o->out.string()), env::parent_start_time());
      o->auto_resume |= plan.resume;
      o->overwrite |= plan.overwrite;
      if (lead && !plan.note.empty()) fmt::print("segscale: {}\n", plan.note);
    }
    if (storage::is_url(o->out.string())) {
      const std::string remote = o->out.string();
      sync.emplace(remote, stage_dir->empty() ? train::RunSync::default_staging(remote) : *stage_dir);
      if (!o->resume && !(o->auto_resume && sync->remote_has("checkpoint.pt"))) {
        if (const std::string found = sync->remote_run_file(); !found.empty()) {
          if (!o->overwrite)
            throw UsageError(fmt::format("{}: already holds a training run ({}); continue it with --resume, or start afresh with "
                                         "--overwrite (deletes its run files), or choose another --out", remote, found));
          if (lead) sync->clear();
        }
      }
      sync->pull();
      o->out = sync->staging();
      if (lead) o->on_saved = [&sync] { sync->push(); };
    }
    // Resuming: the run's own settings for every flag not given (train/resume_settings.h).
    const std::filesystem::path ckpt = (o->checkpoint_dir.empty() ? o->out : o->checkpoint_dir) / "checkpoint.pt";
    if ((o->resume || (o->auto_resume && std::filesystem::exists(ckpt))) && std::filesystem::exists(o->out / "config.json")) {
      const auto taken = train::take_settings_from_run(*o, io::read_json_file(o->out / "config.json"),
                                                       [cmd](const std::string& flag) { return cmd->get_option(flag)->count() > 0; });
      if (lead && !taken.empty())
        fmt::print("resume: {} from {}\n", fmt::join(taken, ", "), (o->out / "config.json").string());
    }
    train::TrainResult r;
    try {
      r = train::run_training(*o);
    } catch (...) {
      if (sync && lead) {  // keep what the run saved (its last checkpoint) before reporting the failure
        try {
          sync->push();
        } catch (const std::exception& e) {
          fmt::print(stderr, "segscale: warning: could not push the run to {}: {}\n", sync->remote(), e.what());
        }
      }
      throw;
    }
    if (sync && lead) {
      sync->push();
      r.weights = std::filesystem::path(sync->remote()) / r.weights.filename();
      r.checkpoint = std::filesystem::path(sync->remote()) / r.checkpoint.filename();
    }
    auto stopped = [&] {
      return Stopped(fmt::format("{} received, stopped at step {}: checkpoint saved to {}; run the same command with --resume (or --auto-resume) to continue",
                                 strsignal(r.stopped_by_signal), r.total_steps, r.checkpoint.string()));
    };
    if (r.rank != 0) {
      if (r.stopped_by_signal) throw stopped();
      return;
    }
    const std::string resumed = r.total_steps != r.steps ? fmt::format(" (run total: {})", plural(r.total_steps, "step")) : std::string();
    fmt::print("trained {}{} in {:.1f} s: {:.2f} samples/s{}, data wait {:.0f}%, last loss {:.4f}\n", plural(r.steps, "step"), resumed, r.seconds,
               r.samples_per_s, r.world > 1 ? fmt::format(" per rank x {} ranks", r.world) : std::string(), 100 * r.data_wait_fraction, r.last_loss);
    if (r.best_dice >= 0)
      fmt::print("{}: mean {:.4f} (TC {:.4f}, WT {:.4f}, ET {:.4f}) -> {}\n", r.best_what, r.best_dice, r.best_per_class[0],
                 r.best_per_class[1], r.best_per_class[2], r.weights.string());
    else
      fmt::print("no validation ran (--val-fraction 0 or no validation epoch yet): the weights are in {}\n", r.weights.string());
    for (const std::string& line : r.tracking) fmt::print("{}\n", line);
    if (r.stopped_by_signal) throw stopped();
  });
}

}  // namespace segscale::cli
