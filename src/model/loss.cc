#include "model/loss.h"

#include <cmath>
#include <limits>

namespace segscale::model {

torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& target, const DiceLossOptions& o) {
  torch::Tensor p = torch::sigmoid(logits);
  std::vector<std::int64_t> dims;
  for (std::int64_t d = 2; d < logits.dim(); ++d) dims.push_back(d);
  torch::Tensor t = target.to(p.dtype());
  torch::Tensor inter = (p * t).sum(dims);
  torch::Tensor ground = (t * t).sum(dims);
  torch::Tensor pred = (p * p).sum(dims);
  torch::Tensor f = 1.0 - (2.0 * inter + o.smooth_nr) / (ground + pred + o.smooth_dr);
  return f.mean();
}

torch::Tensor binarize(const torch::Tensor& logits) { return torch::sigmoid(logits.to(torch::kFloat32)) >= 0.5; }

std::vector<std::vector<double>> dice_per_sample(const torch::Tensor& pred, const torch::Tensor& target) {
  torch::Tensor p = pred.to(torch::kBool), t = target.to(torch::kBool);
  std::vector<std::int64_t> dims;
  for (std::int64_t d = 2; d < p.dim(); ++d) dims.push_back(d);
  torch::Tensor inter = (p & t).sum(dims).to(torch::kFloat64).cpu();
  torch::Tensor sp = p.sum(dims).to(torch::kFloat64).cpu(), st = t.sum(dims).to(torch::kFloat64).cpu();
  std::vector<std::vector<double>> out(static_cast<std::size_t>(p.size(0)), std::vector<double>(static_cast<std::size_t>(p.size(1))));
  auto a = inter.accessor<double, 2>(), b = sp.accessor<double, 2>(), c = st.accessor<double, 2>();
  for (std::int64_t n = 0; n < p.size(0); ++n)
    for (std::int64_t k = 0; k < p.size(1); ++k)
      out[n][k] = c[n][k] > 0 ? 2.0 * a[n][k] / (c[n][k] + b[n][k]) : std::numeric_limits<double>::quiet_NaN();
  return out;
}

DiceSummary summarize_dice(const std::vector<std::vector<double>>& rows) {
  DiceSummary s;
  const std::size_t channels = rows.empty() ? 0 : rows[0].size();
  s.per_channel.assign(channels, 0.0);  // MONAI reports 0 for a channel that is empty in every sample
  for (std::size_t c = 0; c < channels; ++c) {
    double sum = 0;
    int n = 0;
    for (const auto& r : rows)
      if (!std::isnan(r[c])) sum += r[c], ++n;
    if (n) s.per_channel[c] = sum / n;
  }
  double total = 0;
  int samples = 0;
  for (const auto& r : rows) {
    double sum = 0;
    int n = 0;
    for (double v : r)
      if (!std::isnan(v)) sum += v, ++n;
    if (n) total += sum / n, ++samples;
  }
  s.mean = samples ? total / samples : 0.0;
  return s;
}

}  // namespace segscale::model
