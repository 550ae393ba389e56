#include "train/validation.h"

#include <cmath>
#include <limits>

#include "loader/device_cache.h"
#include "model/sliding_window.h"
#include "model/torch_compat.h"

namespace segscale::train {

namespace {

// Every rank's rows (values and "not NaN" masks, summed into each rank's block), in validation order.
std::vector<std::vector<double>> gather_rows(distributed::Comm& comm, const env::World& world, std::size_t total,
                                             const std::vector<std::vector<double>>& mine) {
  const std::int64_t per = static_cast<std::int64_t>((total + world.size - 1) / world.size);
  torch::Tensor vals = torch::zeros({world.size, per, 3}, torch::kFloat64), mask = torch::zeros({world.size, per, 3}, torch::kFloat64);
  for (std::size_t i = 0; i < mine.size(); ++i)
    for (int c = 0; c < 3; ++c)
      if (!std::isnan(mine[i][c])) {
        vals[world.rank][static_cast<std::int64_t>(i)][c] = mine[i][c];
        mask[world.rank][static_cast<std::int64_t>(i)][c] = 1.0;
      }
  comm.allreduce_sum(vals);
  comm.allreduce_sum(mask);
  std::vector<std::vector<double>> rows;
  for (int r = 0; r < world.size; ++r)
    for (std::int64_t i = 0; i < per; ++i) {
      if (static_cast<std::size_t>(i) * world.size + r >= total) continue;
      std::vector<double> row(3);
      for (int c = 0; c < 3; ++c)
        row[c] = mask[r][i][c].item<double>() > 0 ? vals[r][i][c].item<double>() : std::numeric_limits<double>::quiet_NaN();
      rows.push_back(row);
    }
  return rows;
}

}  // namespace

model::DiceSummary Validator::pseudo_dice(model::Network& net, std::int64_t epoch) {
  const int regions = static_cast<int>(data_.nnunet->regions.size());
  torch::Tensor counts = torch::zeros({3, regions}, torch::kFloat64);  // tp, fp, fn
  if (!nnunet_) {
    // Each rank samples its own batches (nnU-Net's validation loader per rank), keyed apart from training's.
    loader::NnunetLoaderOptions no = nnunet_loader_options(o_, data_, world_.rank);
    no.augment = false;
    no.stream = 1;
    no.batches_per_epoch = o_.val_steps;
    nnunet_ = std::make_unique<loader::NnunetLoader>(data_.store, data_.split.val, no);
  }
  nnunet_->start_epoch(epoch);
  torch::NoGradGuard g;
  net.eval();
  while (auto host = nnunet_->next()) {
    const loader::Batch b = loader::to_tensors(std::move(*host), false);
    const torch::Tensor logits = net.forward(b.image.to(device_));
    const torch::Tensor pred = (logits > 0).to(torch::kFloat64), y = b.label.to(device_).to(torch::kFloat64);
    const std::vector<std::int64_t> axes{0, 2, 3, 4};
    counts[0] += (pred * y).sum(axes).cpu();
    counts[1] += (pred * (1 - y)).sum(axes).cpu();
    counts[2] += ((1 - pred) * y).sum(axes).cpu();
  }
  net.train();
  if (comm_) comm_->allreduce_sum(counts);
  model::DiceSummary d;
  double sum = 0;
  int n = 0;
  for (int c = 0; c < regions; ++c) {
    const double tp = counts[0][c].item<double>(), fp = counts[1][c].item<double>(), fn = counts[2][c].item<double>();
    const double dice = 2 * tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : std::numeric_limits<double>::quiet_NaN();
    d.per_channel.push_back(dice);
    if (!std::isnan(dice)) sum += dice, ++n;
  }
  d.mean = n > 0 ? sum / n : 0;  // nnU-Net's mean_fg_dice: np.nanmean
  return d;
}

model::DiceSummary Validator::run(model::Network& net, std::int64_t epoch) {
  const auto& val = data_.split.val;
  if (val.empty()) return {};
  if (data_.nnunet) return pseudo_dice(net, epoch);
  const bool sliding = o_.val_mode != "crop";  // full (or its former name, sliding)
  loader::LoaderOptions vo = train_lo_;
  vo.shuffle = false;
  vo.rank = 0;
  vo.world = 1;
  vo.batch = sliding ? 1 : o_.batch;
  const bool val_cache = !data_.val_store || data_.val_store->manifest()["settings"].value("mode", "") == "cache";
  vo.mode = !val_cache ? loader::SampleMode::kAsStored : (sliding ? loader::SampleMode::kWhole : loader::SampleMode::kCenterCrop);
  vo.roi = data_.roi;
  // Each rank evaluates every world-th validation sample (no padding, so nothing counts twice).
  std::vector<std::size_t> mine;
  for (std::size_t i = static_cast<std::size_t>(world_.rank); i < val.size(); i += static_cast<std::size_t>(world_.size)) mine.push_back(val[i]);
  std::vector<std::vector<double>> rows;
  std::unique_ptr<loader::BatchSource> host;
  loader::BatchSource* source = nullptr;
  if (!mine.empty() && o_.device_cache && vo.mode != loader::SampleMode::kAsStored) {
    if (!device_cache_) device_cache_ = std::make_unique<loader::DeviceCache>(data_.val_store, mine, vo, device_);
    source = device_cache_.get();
  } else if (!mine.empty()) {
    host = std::make_unique<loader::HostSource>(data_.val_store ? std::make_unique<loader::Loader>(data_.val_store, mine, vo)
                                                                : std::make_unique<loader::Loader>(data_.catalog, mine, vo));
    source = host.get();
  }
  if (source) source->start_epoch(0);
  torch::NoGradGuard g;
  net.eval();
  // --amp validates under autocast too, as MONAI's tutorial (VAL_AMP); the logits come back in float32.
  const at::ScalarType amp_dtype = o_.amp_dtype == "fp16" ? at::kHalf : at::kBFloat16;
  const auto forward = [&](const torch::Tensor& in) {
    if (!o_.amp) return net.forward(in);
    struct Autocast {
      c10::DeviceType device;
      at::ScalarType dtype;
      Autocast(c10::DeviceType d, at::ScalarType t) : device(d), dtype(t) { compat::set_autocast(device, true, dtype); }
      ~Autocast() { compat::set_autocast(device, false, dtype); }
    } autocast(in.device().type(), amp_dtype);
    return net.forward(in).to(torch::kFloat32);
  };
  while (source) {
    auto b = source->next();
    if (!b) break;
    if (b->keys.empty()) continue;
    torch::Tensor x = b->image.to(device_);
    torch::Tensor logits;
    if (sliding) {  // whole volumes, as MONAI's sliding_window_inference over the training roi
      model::SlidingWindowOptions sw;
      sw.roi = data_.roi;
      sw.overlap = o_.sw_overlap;
      logits = model::sliding_window_inference(x, forward, sw);
    } else {
      logits = forward(x);
    }
    auto r = model::dice_per_sample(model::binarize(logits), b->label.to(device_));
    rows.insert(rows.end(), r.begin(), r.end());
  }
  net.train();
  if (comm_) rows = gather_rows(*comm_, world_, val.size(), rows);
  return model::summarize_dice(rows);
}

}  // namespace segscale::train
