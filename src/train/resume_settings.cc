#include "train/resume_settings.h"

#include "train/recipe.h"

namespace segscale::train {
using nlohmann::json;

namespace {
bool sets_by_recipe(const std::string& flag) {
  for (const char* f : {"--model", "--model-config", "--loss", "--loss-config", "--optimizer", "--lr", "--weight-decay", "--momentum",
                        "--nesterov", "--schedule", "--amp", "--val-mode", "--sw-overlap", "--batch", "--clip-grad-norm", "--steps-per-epoch", "--val-fraction", "--amp-dtype"})
    if (flag == f) return true;
  return false;
}
}  // namespace

std::vector<std::string> take_settings_from_run(TrainOptions& o, const json& config, std::function<bool(const std::string&)> given) {
  std::vector<std::string> taken;
  // Each scalar: its flag, its config.json key, and where it goes.
  auto take = [&](const char* flag, const char* key, auto& field) {
    if (given(flag) || !config.contains(key) || config[key].is_null()) return;
    try {
      field = config[key].get<std::remove_reference_t<decltype(field)>>();
      taken.emplace_back(flag);
    } catch (const json::exception&) {
      // a key of another type (an older run's): left to the checkpoint's check
    }
  };
  std::string recipe = o.recipe;
  take("--recipe", "recipe", recipe);
  if (recipe != o.recipe) {
    o.recipe = recipe;
    apply_recipe(o, given);
  }
  // A recipe named on this command line stands for all it sets: those settings are then this invocation's (and
  // differences from the run are reported), not the run's.
  const std::function<bool(const std::string&)> user_given = given;
  given = [&](const std::string& flag) { return user_given(flag) || (user_given("--recipe") && sets_by_recipe(flag)); };
  take("--batch", "batch", o.batch);
  take("--lr", "lr", o.lr);
  take("--weight-decay", "weight_decay", o.weight_decay);
  take("--amsgrad", "amsgrad", o.amsgrad);
  take("--seed", "seed", o.seed);
  take("--val-fraction", "val_fraction", o.val_fraction);
  take("--fold", "fold", o.fold);
  take("--clip-grad-norm", "clip_grad_norm", o.clip_grad_norm);
  std::string splits = o.splits.string();
  take("--splits", "splits", splits);
  o.splits = splits;
  take("--val-every", "val_every", o.val_every);
  take("--store-chain", "store_chain", o.store_chain);
  take("--steps-per-epoch", "steps_per_epoch", o.steps_per_epoch);
  take("--val-steps", "val_steps", o.val_steps);
  take("--val-mode", "val_mode", o.val_mode);
  take("--sw-overlap", "sw_overlap", o.sw_overlap);
  take("--optimizer", "optimizer", o.optimizer);
  take("--momentum", "momentum", o.momentum);
  take("--nesterov", "nesterov", o.nesterov);
  take("--schedule", "schedule", o.schedule);
  take("--warmup-epochs", "warmup_epochs", o.warmup_epochs);
  take("--min-lr", "min_lr", o.min_lr);
  take("--amp-dtype", "amp_dtype", o.amp_dtype);
  take("--label-map", "label_map", o.label_map);
  // The network and the loss as the run built them (its full constructor and loss arguments).
  if (!given("--model") && !given("--model-config") && config.contains("model") && config["model"].is_object()) {
    o.model = config["model"].value("name", o.model);
    o.model_config = config["model"].dump();
    taken.emplace_back("--model");
  }
  if (!given("--loss") && !given("--loss-config") && config.contains("loss") && config["loss"].is_object()) {
    o.loss = config["loss"].value("name", o.loss);
    o.loss_config = config["loss"].dump();
    taken.emplace_back("--loss");
  }
  // The data: the run's store (or raw dataset) when neither is given.
  if (!given("--store") && !given("--data") && config.contains("store") && config["store"].is_string()) {
    (config.value("store_mode", "") == "raw" ? o.data : o.store) = config["store"].get<std::string>();
    taken.emplace_back(config.value("store_mode", "") == "raw" ? "--data" : "--store");
  }
  // The run length: the run's, unless this invocation sets one (a change is recorded by the trainer).
  if (!given("--epochs") && !given("--max-steps")) {
    // The run's own limits exactly: a limit it did not have stays unset (not the recipe's default run length).
    if (config.contains("epochs")) o.epochs = config["epochs"].is_number_integer() ? std::optional<int>(config["epochs"].get<int>()) : std::nullopt;
    if (config.contains("max_steps"))
      o.max_steps = config["max_steps"].is_number_integer() ? std::optional<std::int64_t>(config["max_steps"].get<std::int64_t>()) : std::nullopt;
    taken.emplace_back("--epochs/--max-steps");
  }
  return taken;
}

}  // namespace segscale::train
