#include "train/validation.h"

#include <cmath>
#include <limits>

#include "loader/device_cache.h"
#include "model/sliding_window.h"

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

model::DiceSummary Validator::run(model::Network& net) {
  const auto& val = data_.split.val;
  if (val.empty()) return {};
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
      logits = model::sliding_window_inference(x, [&](const torch::Tensor& in) { return net.forward(in); }, sw);
    } else {
      logits = net.forward(x);
    }
    auto r = model::dice_per_sample(model::binarize(logits), b->label.to(device_));
    rows.insert(rows.end(), r.begin(), r.end());
  }
  net.train();
  if (comm_) rows = gather_rows(*comm_, world_, val.size(), rows);
  return model::summarize_dice(rows);
}

}  // namespace segscale::train
