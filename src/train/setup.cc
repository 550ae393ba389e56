#include "train/setup.h"

#include <fmt/format.h>

#include "model/loss.h"
#include "segscale/version.h"
#include "storage/storage.h"
#include "util/error.h"
#include "util/parallel.h"

namespace segscale::train {
namespace fs = std::filesystem;
using nlohmann::json;

torch::Device setup_device(const TrainOptions& o, const env::World& world) {
  if (o.val_mode != "crop" && o.val_mode != "sliding") throw UsageError("--val-mode must be crop or sliding");
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

json network_config(const TrainOptions& o, const RunData& data) {
  return {{"name", "unet"}, {"in_channels", data.in_channels}, {"out_channels", 3}, {"channels", o.channels},
          {"strides", o.strides}, {"num_res_units", o.res_units}};
}

std::shared_ptr<model::Network> build_network(const TrainOptions& o, const json& config, const torch::Device& device) {
  torch::manual_seed(o.seed);
  std::shared_ptr<model::Network> net = model::make_network(config);
  net->to(device);
  if (o.channels_last) {  // the same values in NDHWC order: cuDNN's faster layout for 3-D convolutions on tensor cores
    torch::NoGradGuard g;
    for (auto& p : net->parameters())
      if (p.dim() == 5) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast3d));
  }
  return net;
}

std::unique_ptr<torch::optim::Optimizer> build_optimizer(const TrainOptions& o, model::Network& net) {
  return std::make_unique<torch::optim::Adam>(net.parameters(), torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay).amsgrad(o.amsgrad));
}

LossFn build_loss(const TrainOptions& o) {
  const model::DiceLossOptions opts{o.smooth_nr, o.smooth_dr};
  return [opts](const torch::Tensor& out, const torch::Tensor& target) { return model::dice_loss(out, target, opts); };
}

AmpSettings amp_settings(const TrainOptions& o) { return {o.amp, o.amp_dtype == "fp16" ? at::kHalf : at::kBFloat16}; }

json run_config(const TrainOptions& o, const RunData& data, const RunLength& length, const env::World& world, const model::Network& net) {
  return {{"tool", std::string("segscale ") + kVersion},
          {"store", storage::is_url(o.store.string()) ? o.store.string() : fs::absolute(data.source).lexically_normal().string()},
          {"epochs", length.epochs ? json(*length.epochs) : json(nullptr)}, {"batch", o.batch}, {"lr", o.lr},
          {"weight_decay", o.weight_decay}, {"amsgrad", o.amsgrad}, {"val_every", o.val_every}, {"val_fraction", o.val_fraction},
          {"val_mode", o.val_mode}, {"val_roi", data.roi}, {"seed", o.seed}, {"device", o.device}, {"threads", resolve_threads(o.threads)},
          {"max_steps", length.steps ? json(*length.steps) : json(nullptr)}, {"amp", o.amp}, {"amp_dtype", o.amp_dtype},
          {"channels", o.channels}, {"strides", o.strides}, {"res_units", o.res_units}, {"in_channels", net.in_channels()},
          {"out_channels", net.out_channels()}, {"label_map", data.pipeline.label_map}, {"smooth_nr", o.smooth_nr},
          {"smooth_dr", o.smooth_dr}, {"store_mode", data.settings.value("mode", "")}, {"pipeline", data.settings["pipeline"]},
          {"world", world.size}, {"device_cache", o.device_cache}, {"device_cache_mode", o.device_cache_mode}};
}

}  // namespace segscale::train
