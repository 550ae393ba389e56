#include "train/recipe.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

#include "transforms/pipeline_presets.h"

#include "util/error.h"

namespace segscale::train {
using nlohmann::json;

namespace {

struct Recipe {
  std::string name;
  std::string model;
  json model_args;  // MONAI constructor arguments (in/out channels come from the data)
  std::string loss;
  json loss_args;   // MONAI loss arguments
  std::string optimizer;
  double lr, weight_decay, momentum;
  bool nesterov;
  std::string schedule;
  bool amp;  // on CUDA (CPU runs stay float32 unless --amp is given)
  std::string val_mode;
  double sw_overlap;
  int batch;            // 0: the plan's (nnunet)
  std::string pipeline;
  double clip_grad_norm = 0;
  std::int64_t steps_per_epoch = 0;  // 0: one pass over the training cases
  std::optional<int> epochs;         // the run length when neither --epochs nor --max-steps is given
  double val_fraction = 0.1;         // held-out cases when no --fold is given
  std::string amp_dtype = "bf16";    // autocast's type on CUDA (nnU-Net: float16 with a grad scaler)
};

// The table. Sources: the case study (MONAI UNet, DiceLoss, Adam 1e-4); MONAI's BraTS tutorial
// (brats_segmentation_3d.ipynb: SegResNet, DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True,
// sigmoid=True), Adam(1e-4, weight_decay=1e-5), CosineAnnealingLR(T_max=max_epochs), AMP, batch 1,
// sliding-window validation with overlap 0.5, 300 epochs, a 20% validation split; its AMP is torch.cuda.amp's float16
// autocast with a GradScaler); nnU-Net as MONAI's dynunet pipeline builds it (DynUNet with deep
// supervision, DiceCELoss(batch=True), SGD(1e-2, momentum=0.99, nesterov=True, weight_decay=3e-5), poly 0.9): now
// monai-dynunet; and nnU-Net's own (nnunetv2 2.8.1 nnUNetTrainer on a store of its preprocessed cases: PlainConvUNet
// from the plan with deep supervision, DC_and_BCE over regions with the plan's batch Dice, SGD 1e-2 / 0.99 /
// Nesterov / 3e-5, poly at each epoch's start, gradients clipped at 12, 1000 epochs of 250 iterations, the plan's
// batch, pseudo-Dice validation).
const std::vector<Recipe>& recipes() {
  static const std::vector<Recipe> table{
      {"case-study", "unet", json::object(), "dice", json{{"sigmoid", true}, {"squared_pred", true}, {"smooth_nr", 1e-5}, {"smooth_dr", 1e-5}},
       "adam", 1e-4, 0.0, 0.0, false, "none", false, "crop", 0.25, 2, "case-study", 0.0, 0, std::nullopt, 0.1},
      {"monai-brats", "segresnet",
       json{{"blocks_down", {1, 2, 2, 4}}, {"blocks_up", {1, 1, 1}}, {"init_filters", 16}, {"dropout_prob", 0.2}}, "dice",
       json{{"sigmoid", true}, {"squared_pred", true}, {"smooth_nr", 0.0}, {"smooth_dr", 1e-5}}, "adam", 1e-4, 1e-5, 0.0, false, "cosine",
       true, "full", 0.5, 1, "monai-brats", 0.0, 0, 300, 0.2, "fp16"},
      {"nnunet", "plainconvunet", json{{"deep_supervision", true}}, "dc_and_bce",
       json{{"sigmoid", true}, {"smooth_nr", 1e-5}, {"smooth_dr", 1e-5}}, "sgd", 1e-2, 3e-5, 0.99, true, "poly", true, "pseudo", 0.5, 0, "nnunet",
       12.0, 250, 1000, 0.2, "fp16"},
      {"monai-dynunet", "dynunet", json{{"deep_supervision", true}, {"deep_supr_num", 2}, {"res_block", false}, {"norm_name", "instance"}},
       "dicece", json{{"sigmoid", true}, {"squared_pred", false}, {"batch", true}, {"smooth_nr", 1e-5}, {"smooth_dr", 1e-5}}, "sgd", 1e-2,
       3e-5, 0.99, true, "poly", true, "full", 0.5, 2, "nnunet", 0.0, 0, std::nullopt, 0.1},
  };
  return table;
}

const Recipe& find_recipe(const std::string& name) {
  for (const auto& r : recipes())
    if (r.name == name) return r;
  throw UsageError(fmt::format("--recipe {} is not known (known: {})", name, fmt::join(recipe_names(), ", ")));
}

}  // namespace

const std::vector<std::string>& recipe_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& r : recipes()) v.push_back(r.name);
    return v;
  }();
  return names;
}

void apply_recipe(TrainOptions& o, const std::function<bool(const std::string&)>& given) {
  const Recipe& r = find_recipe(o.recipe);
  if (!given("--model")) o.model = r.model;
  o.model_args = o.model == r.model ? r.model_args : json::object();
  if (!given("--loss")) o.loss = r.loss;
  o.loss_args = o.loss == r.loss ? r.loss_args : recipes().front().loss_args;
  if (!given("--optimizer")) o.optimizer = r.optimizer;
  if (!given("--lr")) o.lr = r.lr;
  if (!given("--weight-decay")) o.weight_decay = r.weight_decay;
  if (!given("--momentum")) o.momentum = o.optimizer == r.optimizer ? r.momentum : 0.0;
  if (!given("--nesterov")) o.nesterov = o.optimizer == r.optimizer && r.nesterov;
  if (!given("--schedule")) o.schedule = r.schedule;
  if (!given("--amp")) o.amp = r.amp && o.device == "cuda";
  if (!given("--val-mode")) o.val_mode = r.val_mode;
  if (!given("--sw-overlap")) o.sw_overlap = r.sw_overlap;
  if (!given("--batch")) o.batch = r.batch;
  if (!given("--clip-grad-norm")) o.clip_grad_norm = r.clip_grad_norm;
  if (!given("--steps-per-epoch")) o.steps_per_epoch = r.steps_per_epoch;
  if (!given("--epochs") && !given("--max-steps") && r.epochs) o.epochs = r.epochs;
  if (!given("--val-fraction")) o.val_fraction = r.val_fraction;
  if (!given("--amp-dtype")) o.amp_dtype = r.amp_dtype;
  o.pipeline_preset = r.pipeline;
}

std::string recipe_defaults(const std::string& flag) {
  std::vector<std::string> parts;
  for (const auto& r : recipes()) {
    std::string v;
    if (flag == "--batch") v = r.batch > 0 ? std::to_string(r.batch) : "the plan's";
    else if (flag == "--lr") v = fmt::format("{:g}", r.lr);
    else if (flag == "--weight-decay") v = fmt::format("{:g}", r.weight_decay);
    else if (flag == "--momentum") v = fmt::format("{:g}", r.momentum);
    else if (flag == "--model") v = r.model;
    else if (flag == "--loss") v = r.loss;
    else if (flag == "--optimizer") v = r.optimizer;
    else if (flag == "--schedule") v = r.schedule;
    else if (flag == "--val-mode") v = r.val_mode;
    else if (flag == "--sw-overlap") v = fmt::format("{:g}", r.sw_overlap);
    else if (flag == "--val-fraction") v = fmt::format("{:g}", r.val_fraction);
    else if (flag == "--amp-dtype") v = r.amp_dtype;
    else if (flag == "--steps-per-epoch") v = r.steps_per_epoch > 0 ? std::to_string(r.steps_per_epoch) : "one pass";
    else throw std::logic_error("recipe_defaults: no recipe field for " + flag);
    parts.push_back(r.name + " " + v);
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string describe_recipe(const TrainOptions& o) {
  std::string opt = o.optimizer == "sgd" ? fmt::format("sgd lr {:g} momentum {:g}{} wd {:g}", o.lr, o.momentum, o.nesterov ? " nesterov" : "", o.weight_decay)
                                         : fmt::format("{} lr {:g} wd {:g}", o.optimizer, o.lr, o.weight_decay);
  std::string sched = o.schedule + (o.warmup_epochs > 0 ? fmt::format(" (warm-up {} epochs)", o.warmup_epochs) : std::string());
  const std::string extra = (o.clip_grad_norm > 0 ? fmt::format(", clip {:g}", o.clip_grad_norm) : std::string()) +
                            (o.steps_per_epoch > 0 ? fmt::format(", {} steps per epoch", o.steps_per_epoch) : std::string());
  return fmt::format("recipe {}: model {}, loss {}, {}, schedule {}, amp {}, val {}, batch {}{}, chain {}", o.recipe, o.model, o.loss, opt, sched,
                     o.amp ? o.amp_dtype : "off", o.val_mode, o.batch > 0 ? std::to_string(o.batch) : "the plan's", extra,
                     o.store.empty() ? (o.pipeline.empty() ? o.pipeline_preset : o.pipeline.string()) : "the store's");
}

std::optional<transforms::Pipeline> pipeline_preset(const std::string& name) {
  if (!transforms::is_pipeline_preset(name)) return std::nullopt;
  return transforms::pipeline_from_arg(name);
}

}  // namespace segscale::train
