#include "train/options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "io/file.h"
#include "io/json_file.h"
#include "util/error.h"

namespace segscale::train {
namespace fs = std::filesystem;

namespace {

template <typename T>
void require(bool ok, const char* flag, T value, const char* range) {
  if (!ok) throw UsageError(fmt::format("{} {} is out of range: it must be {}", flag, value, range));
}

}  // namespace

std::optional<MlflowSettings> mlflow_settings_of(const TrainOptions& o) {
  std::string uri = o.mlflow;
  // A resumed run goes on logging where it logged, unless told otherwise.
  if (uri.empty() && !std::getenv("MLFLOW_TRACKING_URI") && (o.resume || o.auto_resume) && !o.out.empty()) {
    std::error_code ec;
    if (fs::exists(o.out / "mlflow.json", ec)) {
      try {
        uri = io::read_json_file(o.out / "mlflow.json").value("tracking_uri", "");
      } catch (const Error&) {
        // unreadable: MLflow stays off, as without the file
      }
    }
  }
  return mlflow_settings(uri, o.mlflow_experiment, o.mlflow_run_name, o.out, [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
  });
}

void check_options(const TrainOptions& o) {
  (void)mlflow_settings_of(o);  // a URI segscale cannot talk to is refused before any work
  if (!o.store.empty() && !o.data.empty()) throw UsageError("--store and --data: give one, not both (a prepared store, or a raw dataset)");
  if (o.store.empty() && o.data.empty()) throw UsageError("give --store STORE (from segscale prep) or --data DATASET (raw NIfTI, transforms on the fly)");
  if (!o.pipeline.empty() && o.data.empty()) throw UsageError("--pipeline applies to --data only (a store keeps the pipeline it was prepared with)");
  if (o.epochs) require(*o.epochs >= 1, "--epochs", *o.epochs, "at least 1");
  if (o.max_steps) require(*o.max_steps >= 1, "--max-steps", *o.max_steps, "at least 1");
  if (!o.fold.empty() && o.fold != "all" && (o.fold.find_first_not_of("0123456789") != std::string::npos || o.fold.size() > 6))
    throw UsageError(fmt::format("--fold {}: a fold number (0-4 for nnU-Net's five folds; larger: its random 80:20 split) or all", o.fold));
  if (o.fold.empty() && !o.splits.empty()) throw UsageError("--splits names the folds; say which with --fold N");
  if (!o.fold.empty() && !o.val_store.empty()) throw UsageError("--fold and --val-store: the fold names the validation cases; give one");
  if (o.batch != 0 || o.recipe != "nnunet") require(o.batch >= 1, "--batch", o.batch, "at least 1");  // nnunet: 0 is the plan's
  require(o.steps_per_epoch >= 0, "--steps-per-epoch", o.steps_per_epoch, "0 (one pass over the training cases) or more");
  require(o.val_steps >= 1, "--val-steps", o.val_steps, "at least 1");
  require(o.lr > 0 && std::isfinite(o.lr), "--lr", o.lr, "a positive number");
  require(o.weight_decay >= 0 && std::isfinite(o.weight_decay), "--weight-decay", o.weight_decay, "0 or more");
  require(o.val_every >= 1, "--val-every", o.val_every, "at least 1 (epochs)");
  require(o.val_fraction >= 0 && o.val_fraction < 1, "--val-fraction", o.val_fraction, "in [0, 1) (0: no validation)");
  require(o.threads >= 0, "--threads", o.threads, "0 (all cores) or more");
  require(o.loader_threads >= 1, "--loader-threads", o.loader_threads, "at least 1");
  require(o.checkpoint_every >= 0, "--checkpoint-every", o.checkpoint_every, "0 (at epoch ends) or more");
  require(o.timeout_s >= 1, "--timeout", o.timeout_s, "at least 1 (seconds)");
  if (o.resume && o.overwrite) throw UsageError("--resume and --overwrite: give one, not both");
  if (o.optimizer != "adam" && o.optimizer != "adamw" && o.optimizer != "sgd")
    throw UsageError(fmt::format("--optimizer {} is not known: it must be adam, adamw or sgd", o.optimizer));
  require(o.momentum >= 0 && o.momentum < 1, "--momentum", o.momentum, "in [0, 1)");
  if (o.momentum > 0 && o.optimizer != "sgd") throw UsageError(fmt::format("--momentum applies to --optimizer sgd (not {})", o.optimizer));
  if (o.nesterov && (o.optimizer != "sgd" || o.momentum <= 0)) throw UsageError("--nesterov needs --optimizer sgd and a --momentum above 0");
  if (o.amsgrad && o.optimizer == "sgd") throw UsageError("--amsgrad applies to --optimizer adam or adamw");
  if (o.schedule != "none" && o.schedule != "cosine" && o.schedule != "poly")
    throw UsageError(fmt::format("--schedule {} is not known: it must be none, cosine or poly", o.schedule));
  require(o.warmup_epochs >= 0, "--warmup-epochs", o.warmup_epochs, "0 or more");
  require(o.min_lr >= 0 && std::isfinite(o.min_lr), "--min-lr", o.min_lr, "0 or more");
  if (o.loss != "dice" && o.loss != "dicece" && o.loss != "dicefocal" && o.loss != "dc_and_bce")
    throw UsageError(fmt::format("--loss {} is not known: it must be dice, dicece, dicefocal or dc_and_bce", o.loss));
  if (!(o.clip_grad_norm >= 0) || !std::isfinite(o.clip_grad_norm))
    throw UsageError(fmt::format("--clip-grad-norm {} is out of range: 0 (off) or a positive norm", o.clip_grad_norm));
  require(o.sw_overlap >= 0 && o.sw_overlap < 1, "--sw-overlap", o.sw_overlap, "in [0, 1)");
}

std::int64_t RunLength::total_steps(std::int64_t per_epoch) const {
  if (epochs && steps) return std::min(*steps, per_epoch * *epochs);
  if (steps) return *steps;
  return per_epoch * epochs.value_or(1);
}

RunLength run_length(const TrainOptions& o) {
  RunLength r;
  if (o.epochs) r.epochs = *o.epochs;
  if (o.max_steps) r.steps = *o.max_steps;
  if (!r.epochs && !r.steps) r.epochs = 1;
  return r;
}

bool holds_a_run(bool weights_exist, const std::string& metrics) {
  return weights_exist || metrics.find_first_not_of(" \t\r\n") != std::string::npos;
}

void prepare_run_folder(const fs::path& out, bool resume, bool overwrite, bool writer) {
  if (resume) return;
  std::error_code ec;
  std::vector<fs::path> found;
  for (const char* name : kRunFiles)
    if (fs::exists(out / name, ec)) found.push_back(out / name);
  if (found.empty()) return;
  bool weights = false;
  for (const char* name : kWeightFiles) weights |= fs::exists(out / name, ec);
  std::string metrics;
  if (!weights && fs::exists(out / "metrics.jsonl", ec)) {
    const io::Bytes b = io::read_file(out / "metrics.jsonl");
    metrics.assign(b.begin(), b.end());
  }
  if (!holds_a_run(weights, metrics)) {
    if (!writer) return;
    std::vector<std::string> names;
    for (const auto& f : found) {
      fs::remove(f, ec);
      names.push_back(f.filename().string());
    }
    fmt::print(stderr, "segscale: {}: replacing {} of an earlier start that never trained (no step, no weights)\n", out.string(),
               fmt::join(names, ", "));
    return;
  }
  if (!overwrite)
    throw UsageError(fmt::format("{}: already holds a training run ({}); continue it with --resume, or start afresh with --overwrite "
                                 "(deletes its {}), or choose another --out",
                                 out.string(), found.front().filename().string(), "config.json, metrics.jsonl, checkpoint.pt, model.pt, last.pt, its TensorBoard file and mlflow.json"));
  if (!writer) return;
  for (const auto& f : found) {
    fs::remove(f, ec);
    if (ec) throw error_at(f.string(), "cannot remove the previous run's file for --overwrite: " + ec.message());
  }
}

}  // namespace segscale::train
