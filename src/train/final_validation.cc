#include "train/final_validation.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <limits>

#include "infer/nnunet_predict.h"
#include "io/file.h"
#include "store/nnunet_sample.h"
#include "transforms/nnunet_targets.h"

namespace segscale::train {
using nlohmann::json;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string region_key(const std::vector<int>& labels) {
  return labels.size() == 1 ? fmt::format("({},)", labels[0]) : fmt::format("({})", fmt::join(labels, ", "));
}
}  // namespace

FinalValidation nnunet_final_validation(model::Network& net, const RunData& data, const torch::Device& device, const env::World& world,
                                        distributed::Comm* comm, const std::filesystem::path& summary) {
  const auto& nn = *data.nnunet;
  const std::vector<std::size_t>& val = data.split.val;
  const std::int64_t n_cases = static_cast<std::int64_t>(val.size()), regions = static_cast<std::int64_t>(nn.regions.size());
  // Per case and channel: tp, fp, fn, tn (each rank fills its cases; the sum gathers them).
  torch::Tensor counts = torch::zeros({n_cases, regions, 4}, torch::kFloat64);
  infer::NnunetPredictOptions po;
  po.patch.assign(nn.patch.begin(), nn.patch.end());
  torch::NoGradGuard g;
  net.eval();
  store::StoreReader::Raw raw;
  store::NnunetSampleArrays arrays;
  for (std::int64_t i = world.rank; i < n_cases; i += world.size) {
    const std::size_t sample = val[static_cast<std::size_t>(i)];
    data.store->read_into(sample, raw);
    const store::NnunetSampleMeta m = store::nnunet_sample_meta(raw.json, data.store->samples()[sample].key + ".json");
    store::nnunet_sample_arrays(raw.image, raw.label, m, data.store->samples()[sample].key, arrays);
    const std::int64_t v = m.shape[0] * m.shape[1] * m.shape[2];
    const torch::Tensor x = torch::from_blob(const_cast<float*>(arrays.image), {m.channels, m.shape[0], m.shape[1], m.shape[2]}, torch::kFloat32).to(device);
    const torch::Tensor pred = (infer::nnunet_predict_logits(x, [&](const torch::Tensor& t) { return net.forward(t); }, po) > 0).cpu();
    std::vector<std::int16_t> seg(arrays.seg, arrays.seg + v);
    transforms::nnunet_remove_label(seg.data(), seg.size());
    const std::vector<std::uint8_t> ref = transforms::nnunet_regions(seg.data(), seg.size(), nn.regions);
    const torch::Tensor r = torch::from_blob(const_cast<std::uint8_t*>(ref.data()), {regions, m.shape[0], m.shape[1], m.shape[2]}, torch::kUInt8)
                                .to(torch::kBool);
    for (std::int64_t c = 0; c < regions; ++c) {
      const torch::Tensor p = pred[c], t = r[c];
      counts[i][c][0] = (p & t).sum().item<double>();
      counts[i][c][1] = (p & ~t).sum().item<double>();
      counts[i][c][2] = (~p & t).sum().item<double>();
      counts[i][c][3] = (~p & ~t).sum().item<double>();
    }
  }
  net.train();
  if (comm) comm->allreduce_sum(counts);
  FinalValidation out;
  out.cases = static_cast<int>(n_cases);
  out.mean_dice.assign(static_cast<std::size_t>(regions), kNaN);
  // nnU-Net's summary.json layout, regions keyed by their labels as nnU-Net keys them.
  json per_case = json::array();
  std::vector<double> sum(static_cast<std::size_t>(regions), 0);
  std::vector<int> count(static_cast<std::size_t>(regions), 0);
  auto dice_of = [](double tp, double fp, double fn) { return tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : kNaN; };
  for (std::int64_t i = 0; i < n_cases; ++i) {
    json metrics = json::object();
    for (std::int64_t c = 0; c < regions; ++c) {
      const double tp = counts[i][c][0].item<double>(), fp = counts[i][c][1].item<double>(), fn = counts[i][c][2].item<double>(),
                   tn = counts[i][c][3].item<double>();
      const double d = dice_of(tp, fp, fn);
      if (!std::isnan(d)) sum[static_cast<std::size_t>(c)] += d, ++count[static_cast<std::size_t>(c)];
      metrics[region_key(nn.regions[static_cast<std::size_t>(c)])] = {{"Dice", std::isnan(d) ? json() : json(d)},
          {"IoU", tp + fp + fn > 0 ? json(tp / (tp + fp + fn)) : json()}, {"TP", tp}, {"FP", fp}, {"FN", fn}, {"TN", tn},
          {"n_pred", tp + fp}, {"n_ref", tp + fn}};
    }
    per_case.push_back({{"case", data.store->samples()[val[static_cast<std::size_t>(i)]].case_key}, {"metrics", metrics}});
  }
  json mean = json::object();
  double fg = 0;
  int fg_n = 0;
  for (std::int64_t c = 0; c < regions; ++c) {
    const auto cc = static_cast<std::size_t>(c);
    out.mean_dice[cc] = count[cc] > 0 ? sum[cc] / count[cc] : kNaN;
    mean[region_key(nn.regions[cc])] = {{"Dice", count[cc] > 0 ? json(out.mean_dice[cc]) : json()}};
    if (count[cc] > 0) fg += out.mean_dice[cc], ++fg_n;
  }
  out.foreground_mean = fg_n > 0 ? fg / fg_n : kNaN;
  if (world.rank == 0) {
    std::error_code ec;
    std::filesystem::create_directories(summary.parent_path(), ec);
    io::write_file_atomic(summary, json{{"metric_per_case", per_case}, {"mean", mean},
                                        {"foreground_mean", {{"Dice", std::isnan(out.foreground_mean) ? json() : json(out.foreground_mean)}}},
                                        {"note", "segscale: nnU-Net's final validation of this fold, in the preprocessed (cropped) space"}}
                                       .dump(4) + "\n");
  }
  return out;
}

}  // namespace segscale::train
