#include "train/setup.h"

#include <fmt/format.h>

#include "io/json_file.h"
#include "model/loss.h"
#include "model/nnunet_loss.h"
#include "model/weights.h"
#include "prep/plan.h"
#include "segscale/version.h"
#include "storage/storage.h"
#include "util/error.h"
#include "util/parallel.h"

namespace segscale::train {
namespace fs = std::filesystem;
using nlohmann::json;

torch::Device setup_device(const TrainOptions& o, const env::World& world) {
  if (o.val_mode != "crop" && o.val_mode != "full" && o.val_mode != "sliding" && o.val_mode != "pseudo")
    throw UsageError("--val-mode must be crop, full (sliding: its former name) or pseudo (nnU-Net stores)");
  if (o.device != "cpu" && o.device != "cuda") throw UsageError("--device must be cpu or cuda");
  if (o.device == "cuda" && !torch::cuda::is_available())
    throw UsageError("--device cuda: this libtorch has no CUDA or no GPU is visible (build against a CUDA libtorch, see README)");
  if (o.amp && o.device == "cpu" && o.amp_dtype == "fp16") throw UsageError("--amp-dtype fp16 needs --device cuda (CPU autocast runs bf16)");
  if (o.device_cache && o.store.empty()) throw UsageError("--device-cache needs --store (a --cache store)");
  if (o.device_cache && o.skip_bad) throw UsageError("--device-cache reads and checks every case before training; --skip-bad does not apply");
  if (o.device_cache_mode != "full" && o.device_cache_mode != "shard") throw UsageError("--device-cache-mode must be full or shard");
  if (o.amp_dtype != "bf16" && o.amp_dtype != "fp16") throw UsageError("--amp-dtype must be bf16 or fp16");
  at::set_num_threads(resolve_threads(o.threads));
  const torch::Device device =
      o.device == "cuda" ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank)) : torch::Device(torch::kCPU);
  // Every batch has the same shape, so cuDNN's autotuner pays for itself after the first steps (as MONAI's
  // fast-training guide sets torch.backends.cudnn.benchmark).
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  return device;
}

namespace {

// A --model-config / --loss-config value: an inline JSON object, or a file holding one.
json json_setting(const std::string& value, const char* flag) {
  json j;
  try {
    j = !value.empty() && value.front() == '{' ? json::parse(value) : io::read_json_file(value);
  } catch (const json::exception& e) {
    throw UsageError(fmt::format("{} {}: not valid JSON: {}", flag, value, e.what()));
  } catch (const Error& e) {
    throw UsageError(fmt::format("{}: {}", flag, e.what()));
  }
  if (!j.is_object()) throw UsageError(fmt::format("{} {}: must be a JSON object of MONAI constructor arguments", flag, value));
  return j;
}

}  // namespace

// DynUNet's kernels and strides by nnU-Net v1's rule (prep/plan.h) for the run's crop at the chain's spacing
// (the spacing step's pixdim; 1 mm when the chain resamples nothing), as `segscale plan` prints them.
json dynunet_plan(const transforms::Shape3& patch, const transforms::Pipeline& pipeline) {
  prep::Real3 spacing{1.0, 1.0, 1.0};
  for (const auto& step : pipeline.steps)
    if (const auto* sp = std::get_if<transforms::SpacingStep>(&step)) spacing = sp->pixdim;
  const prep::PoolConvPlan plan = prep::get_pool_and_conv_props(spacing, {patch[0], patch[1], patch[2]});
  json kernels = json::array(), strides = json::array(), up = json::array();
  for (const auto& k : plan.conv_kernel_sizes) kernels.push_back(k);
  for (const auto& st : plan.dynunet_strides()) strides.push_back(st);
  for (std::size_t i = 1; i < strides.size(); ++i) up.push_back(strides[i]);
  return {{"kernel_size", kernels}, {"strides", strides}, {"upsample_kernel_size", up}};
}

json network_config(const TrainOptions& o, const RunData& data) {
  json m = o.model == "unet" ? json{{"channels", o.channels}, {"strides", o.strides}, {"num_res_units", o.res_units}}
                             : (o.model_args.is_object() ? o.model_args : json::object());
  if (o.model == "plainconvunet" && data.nnunet) {  // the plan's network, the recipe's settings over it
    json planned = data.nnunet->arch;
    for (const auto& [k, v] : m.items()) planned[k] = v;
    m = planned;
  }
  json given = json::object();
  if (!o.model_config.empty()) {
    given = json_setting(o.model_config, "--model-config");  // named: a range-for over a temporary's items() dangles
    for (const auto& [k, v] : given.items()) {
      if (k == "name" && v != o.model) throw UsageError(fmt::format("--model-config names model {}, but --model is {}", v.dump(), o.model));
      m[k] = v;
    }
  }
  m["name"] = o.model;
  if (o.model == "plainconvunet") {  // nnU-Net's names for the channels
    if (m.contains("input_channels") && m["input_channels"] != data.in_channels)
      throw UsageError(fmt::format("--model-config: input_channels {}, but {} has {} modalities", m["input_channels"].dump(),
                                   data.source.string(), data.in_channels));
    m["input_channels"] = data.in_channels;
    if (!m.contains("num_classes")) m["num_classes"] = 3;
    return m;
  }
  if (m.contains("in_channels") && m["in_channels"] != data.in_channels)
    throw UsageError(fmt::format("--model-config: in_channels {}, but {} has {} modalities", m["in_channels"].dump(), data.source.string(),
                                 data.in_channels));
  m["in_channels"] = data.in_channels;
  if (!m.contains("out_channels")) m["out_channels"] = 3;
  if (o.model == "dynunet" && !m.contains("kernel_size") && !m.contains("strides")) {
    const json plan = dynunet_plan(data.roi, data.pipeline);
    for (const auto& [k, v] : plan.items()) m[k] = v;
    // DynUNet needs deep_supr_num below its number of upsampling levels: the recipe's default follows a shallow
    // plan, a value the user gave is theirs (DynUNet refuses it with the range when it does not fit).
    const int ups = static_cast<int>(m["strides"].size()) - 1;
    if (!given.contains("deep_supr_num") && m.value("deep_supervision", false) && m.value("deep_supr_num", 1) >= ups) {
      if (ups >= 2) m["deep_supr_num"] = ups - 1;
      else m["deep_supervision"] = false;
    }
  }
  return m;
}

std::shared_ptr<model::Network> build_network(const TrainOptions& o, const json& config, const torch::Device& device) {
  torch::manual_seed(o.seed);
  std::shared_ptr<model::Network> net = model::make_network(config);
  if (!o.init_weights.empty()) {
    if (!fs::is_regular_file(o.init_weights)) throw UsageError(fmt::format("--init-weights {}: no such file", o.init_weights.string()));
    model::load_weights(*net, o.init_weights);  // names the file and the missing or mis-shaped weights
  }
  net->to(device);
  if (o.channels_last) {  // the same values in NDHWC order: cuDNN's faster layout for 3-D convolutions on tensor cores
    torch::NoGradGuard g;
    for (auto& p : net->parameters())
      if (p.dim() == 5) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast3d));
  }
  return net;
}

std::unique_ptr<torch::optim::Optimizer> build_optimizer(const TrainOptions& o, model::Network& net) {
  if (o.optimizer == "sgd")  // torch.optim.SGD's update, Nesterov included (checked against it in the oracle tests)
    return std::make_unique<torch::optim::SGD>(
        net.parameters(), torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(o.weight_decay));
  if (o.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(net.parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay).amsgrad(o.amsgrad));
  return std::make_unique<torch::optim::Adam>(net.parameters(), torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay).amsgrad(o.amsgrad));
}

model::LossConfig loss_config(const TrainOptions& o) {
  model::LossConfig base;
  base.smooth_nr = o.smooth_nr;
  base.smooth_dr = o.smooth_dr;
  model::LossConfig c = model::LossConfig::from_json(o.loss_args.is_object() ? o.loss_args : json::object(), "--loss", base);
  c.name = o.loss;
  if (!o.loss_config.empty()) {
    const json extra = json_setting(o.loss_config, "--loss-config");
    if (extra.contains("name") && extra["name"] != o.loss)
      throw UsageError(fmt::format("--loss-config names loss {}, but --loss is {}", extra["name"].dump(), o.loss));
    c = model::LossConfig::from_json(extra, "--loss-config", c);
  }
  return model::LossConfig::from_json(json::object(), "--loss", c);  // checks the combination
}

LossFn build_loss(const model::LossConfig& c) {
  return [c](const std::vector<torch::Tensor>& outs, const torch::Tensor& target) {
    if (outs.size() == 1) return model::segmentation_loss(outs.front(), target, c);
    // nnU-Net's deep supervision: heads at their own resolutions against the label downsampled to each.
    if (c.name != "dc_and_bce")
      throw UsageError(fmt::format("loss {}: the network's deep-supervision heads are at several resolutions (nnU-Net's); train them "
                                   "with nnU-Net's loss, --loss dc_and_bce",
                                   c.name));
    return model::nnunet_deep_supervision_loss(outs, model::nnunet_deep_supervision_targets(target, outs), c.batch, c.smooth_nr);
  };
}

Schedule schedule_for(const TrainOptions& o, std::int64_t epochs) {
  Schedule s;
  s.kind = o.schedule;
  s.epochs = epochs;
  s.warmup_epochs = o.warmup_epochs;
  s.min_lr = o.min_lr;
  check_schedule(s);
  return s;
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

AmpSettings amp_settings(const TrainOptions& o) { return {o.amp, o.amp_dtype == "fp16" ? at::kHalf : at::kBFloat16}; }

// The run's settings, each once: the network's arguments live in "model" and the loss's in "loss" only.
json run_config(const TrainOptions& o, const RunData& data, const RunLength& length, const env::World& world, const model::Network& net,
                const model::LossConfig& loss) {
  return {{"recipe", o.recipe}, {"model", net.config()}, {"loss", loss.to_json()}, {"optimizer", o.optimizer}, {"momentum", o.momentum},
          {"nesterov", o.nesterov}, {"schedule", o.schedule}, {"warmup_epochs", o.warmup_epochs}, {"min_lr", o.min_lr},
          {"sw_overlap", o.sw_overlap}, {"pipeline_preset", o.pipeline_preset},{"tool", std::string("segscale ") + kVersion},
          {"store", storage::is_url(o.store.string()) ? o.store.string() : fs::absolute(data.source).lexically_normal().string()},
          {"epochs", length.epochs ? json(*length.epochs) : json(nullptr)}, {"batch", o.batch}, {"lr", o.lr},
          {"weight_decay", o.weight_decay}, {"amsgrad", o.amsgrad}, {"val_every", o.val_every}, {"val_fraction", o.val_fraction}, {"steps_per_epoch", o.steps_per_epoch > 0 ? json(o.steps_per_epoch) : json()},
          {"val_steps", o.val_mode == "pseudo" ? json(o.val_steps) : json()}, {"final_val", data.nnunet ? json(o.final_val) : json()}, {"store_chain", o.store_chain}, {"nnunet", data.nnunet ? json{{"configuration", data.nnunet->configuration}, {"regions", data.nnunet->regions}, {"region_names", data.nnunet->region_names}, {"patch_size", data.nnunet->patch}} : json()}, {"fold", o.fold.empty() ? json() : json(o.fold)}, {"clip_grad_norm", o.clip_grad_norm > 0 ? json(o.clip_grad_norm) : json()},
          {"splits", o.splits.empty() ? json() : json(o.splits.string())},
          {"val_mode", o.val_mode}, {"val_roi", data.roi}, {"seed", o.seed}, {"device", o.device}, {"threads", resolve_threads(o.threads)},
          {"max_steps", length.steps ? json(*length.steps) : json(nullptr)}, {"amp", o.amp}, {"amp_dtype", o.amp_dtype},
          {"label_map", data.nnunet ? json() : json(data.pipeline.label_map)}, {"store_mode", data.settings.value("mode", "")}, {"pipeline", data.settings.value("pipeline", json())},
          {"world", world.size}, {"device_cache", o.device_cache}, {"device_cache_mode", o.device_cache_mode},
          {"init_weights", o.init_weights.empty() ? json(nullptr) : json(fs::absolute(o.init_weights).lexically_normal().string())}};
}

}  // namespace segscale::train
