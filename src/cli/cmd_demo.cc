// segscale demo: the main job end to end on a small built-in synthetic dataset:
// synth -> check -> prep --cache -> train (online augmentation) -> validation Dice; with --recipe nnunet nnU-Net's path:
// synth (nnU-Net's raw layout) -> plan -> prep --plans -> train --recipe nnunet.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

#include "cli/commands.h"
#include "util/plural.h"
#include "data/case_check.h"
#include "data/catalog.h"
#include "data/synth.h"
#include "io/file.h"
#include "io/json_file.h"
#include "prep/prep.h"
#include "transforms/pipeline.h"
#include "transforms/pipeline_presets.h"
#include "train/recipe.h"
#ifdef SEGSCALE_HAVE_TORCH
#include "train/train.h"
#endif

namespace segscale::cli {
namespace fs = std::filesystem;

namespace {

#ifdef SEGSCALE_HAVE_TORCH
// The nnunet recipe's demo: phantoms in nnU-Net's raw layout (Dataset137's form), nnU-Net's plan, its preprocessing
// into the store, then nnU-Net's recipe (short epochs: the phantoms are learnt a little, the path is shown whole).
void nnunet_demo(const fs::path& root, int cases, int epochs) {
  data::SynthOptions so;
  so.out = root / "Dataset137_Phantoms";
  so.cases = cases;
  so.shape = {64, 64, 48};
  so.layout = "nnunet";
  so.quiet = true;
  data::synthesize_dataset(so);
  fmt::print("[1/4] synth: {} BraTS-like phantoms ({}x{}x{}, nnU-Net's raw layout, Dataset137's labels and regions) -> {}\n", so.cases,
             so.shape[0], so.shape[1], so.shape[2], so.out.string());
  const fs::path plans = root / "nnUNet_preprocessed" / "Dataset137_Phantoms" / "nnUNetPlans.json";
  write_nnunet_plan(so.out.string(), plans.string());
  const nlohmann::json c = io::read_json_file(plans)["configurations"]["3d_fullres"];
  fmt::print("[2/4] plan: nnU-Net's 3d_fullres: patch {}, batch {}, PlainConvUNet of {} stages -> {}\n",
             fmt::join(c["patch_size"].get<std::vector<int>>(), "x"), c["batch_size"].get<int>(),
             c["architecture"]["arch_kwargs"]["n_stages"].get<int>(), plans.string());
  prep::PrepOptions po;
  po.data = so.out;
  po.out = root / "store";
  po.plans = plans;
  po.quiet = true;
  const auto pr = prep::run_prep(po);
  fmt::print("[3/4] prep --plans: {} -> {} (nnU-Net's preprocessing, {:.2f} s)\n", plural(static_cast<std::int64_t>(pr.cases), "case"),
             po.out.string(), pr.seconds);
  train::TrainOptions to;
  to.store = po.out;
  to.out = root / "run";
  to.recipe = "nnunet";
  to.epochs = epochs;
  to.val_fraction = 0.25;
  to.val_steps = 4;
  train::apply_recipe(to, [](const std::string& flag) { return flag == "--epochs" || flag == "--val-fraction"; });
  to.steps_per_epoch = std::max(1, cases / 2);  // a pass over the phantoms per epoch, not nnU-Net's 250 iterations
  fmt::print("[4/4] train: recipe nnunet (PlainConvUNet, DC_and_BCE, SGD, poly), {} of {} steps, nnU-Net's sampler and augmentation\n",
             plural(epochs, "epoch"), to.steps_per_epoch);
  const auto r = train::run_training(to);
  fmt::print("demo: {} in {:.1f} s ({:.1f} samples/s); best pseudo-Dice EMA {:.3f} (TC {:.3f}, WT {:.3f}, ET {:.3f})\n", plural(r.steps, "step"),
             r.seconds, r.samples_per_s, r.best_dice, r.best_per_class[0], r.best_per_class[1], r.best_per_class[2]);
  fmt::print("      run: {} (segscale infer --model {}/model.pt ...; segscale export {} --format nnunet ...)\n", to.out.string(),
             to.out.string(), to.out.string());
}
#endif

}  // namespace

void add_demo_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "Run the whole pipeline on a small synthetic dataset (about a minute on 2 cores)");
  auto out = std::make_shared<std::string>("segscale-demo");
  auto cases = std::make_shared<int>(16);
  auto epochs = std::make_shared<int>(40);
  auto recipe = std::make_shared<std::string>("case-study");
  cmd->add_option("--out", *out, "Working folder for the demo's dataset, store and run")->capture_default_str();
  cmd->add_option("--cases", *cases, "Number of synthetic cases")->capture_default_str()->check(CLI::Range(4, 10000));
  cmd->add_option("--epochs", *epochs, "Training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--recipe", *recipe, "Training recipe (see train --recipe): its model, loss, optimiser, schedule and chain, on "
                  "48x48x32 crops; case-study trains its UNet at lr 2e-3 to learn the phantoms in a minute; nnunet runs nnU-Net's whole "
                  "path (raw layout, plan, prep --plans, its recipe) on 64x64x48 phantoms")
      ->check(CLI::IsMember(train::recipe_names()))->capture_default_str();
  // Capture every option's storage explicitly: a build without libtorch does not use `epochs` in the body, and
  // [=] would then not keep it alive for CLI11 to write into (found by AddressSanitizer).
  cmd->callback([out, cases, epochs, recipe] {
    (void)epochs;
    fs::path root(*out);
    if (*recipe == "nnunet") {
#ifdef SEGSCALE_HAVE_TORCH
      nnunet_demo(root, *cases, *epochs);
#else
      fmt::print("demo --recipe nnunet: this build has no libtorch\n");
#endif
      return;
    }
    data::SynthOptions so;
    so.out = root / "data";
    so.cases = *cases;
    so.shape = {96, 96, 64};
    so.layout = "msd";
    so.quiet = true;
    fmt::print("[1/4] synth: {} BraTS-like phantoms ({}x{}x{}, MSD layout) -> {}\n", so.cases, so.shape[0], so.shape[1], so.shape[2], so.out.string());
    data::synthesize_dataset(so);

    data::Catalog cat = data::open_catalog(so.out);
    // The phantoms follow the MSD dataset.json numbering (3 = enhancing), so the demo uses the correct "msd"
    // map, not the case study's "blog" map (whose ET channel is label 2).
    const data::LabelMap& map = data::label_map_preset("msd");
    for (const auto& c : cat.training) data::check_case(c, cat, &map);
    fmt::print("[2/4] check: {} consistent, label map {} ({})\n", plural(static_cast<std::int64_t>(cat.training.size()), "case"), map.name, map.describe());

    // The recipe's chain, with a 48x48x32 crop to fit the small phantoms (64x64x32 after the case study's
    // resampling).
    train::TrainOptions chain_of;  // the recipe's chain preset
    chain_of.recipe = *recipe;
    train::apply_recipe(chain_of, [](const std::string&) { return false; });
    transforms::Pipeline pipe = transforms::pipeline_from_arg(chain_of.pipeline_preset);
    pipe.label_map = "msd";
    if (transforms::Shape3* roi = pipe.crop_roi()) *roi = {48, 48, 32};
    io::write_file_atomic(root / "pipeline.json", pipe.to_json().dump(2) + "\n");
    prep::PrepOptions po;
    po.data = so.out;
    po.out = root / "store";
    po.cache = true;
    po.pipeline = root / "pipeline.json";
    po.quiet = true;
    auto pr = prep::run_prep(po);
    fmt::print("[3/4] prep --cache: {} -> {} ({:.1f} MB, {:.2f} s)\n", plural(static_cast<std::int64_t>(pr.cases), "case"), po.out.string(), static_cast<double>(pr.bytes) / 1e6,
               pr.seconds);
#ifdef SEGSCALE_HAVE_TORCH
    train::TrainOptions to;
    to.store = po.out;
    to.out = root / "run";
    to.epochs = *epochs;
    to.val_fraction = 0.25;
    to.val_every = 10;
    to.recipe = *recipe;
    const bool case_study = *recipe == "case-study";
    // The case study's demo keeps its batch 2 and lr 2e-3 (the phantoms learnt in a minute); the others take theirs.
    // The demo's run length and split stand for every recipe (not monai-brats' 300 epochs).
    train::apply_recipe(to, [case_study](const std::string& flag) {
      return flag == "--epochs" || flag == "--val-fraction" || (case_study && (flag == "--batch" || flag == "--lr"));
    });
    if (case_study) {
      to.batch = 2;
      to.lr = 2e-3;
      fmt::print("[4/4] train: MONAI UNet (4.8 M parameters), DiceLoss, Adam lr {}, batch {}, {}, online augmentation\n", to.lr,
                 to.batch, plural(*epochs, "epoch"));
    } else {
      fmt::print("[4/4] train: recipe {} ({} model), {}, online augmentation\n", to.recipe, to.model, plural(*epochs, "epoch"));
    }
    auto r = train::run_training(to);
    fmt::print("demo: {} in {:.1f} s ({:.1f} samples/s); best validation Dice mean {:.3f} (TC {:.3f}, WT {:.3f}, ET {:.3f})\n",
               plural(r.steps, "step"), r.seconds, r.samples_per_s, r.best_dice, r.best_per_class[0], r.best_per_class[1], r.best_per_class[2]);
    fmt::print("      weights (MONAI format): {}, metrics: {}\n", (to.out / "model.pt").string(), (to.out / "metrics.jsonl").string());
#else
    fmt::print("[4/4] train: skipped (this build has no libtorch)\n");
#endif
  });
}

}  // namespace segscale::cli
