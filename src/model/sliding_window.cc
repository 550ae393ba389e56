#include "model/sliding_window.h"

#include <cmath>

#include "util/error.h"

namespace segscale::model {

torch::Tensor sliding_window_inference(const torch::Tensor& input, const std::function<torch::Tensor(const torch::Tensor&)>& predictor,
                                       const SlidingWindowOptions& o) {
  if (input.dim() != 5 || input.size(0) != 1) throw Error("sliding window: input must be [1, C, X, Y, Z]");
  if (o.overlap < 0 || o.overlap >= 1) throw UsageError("sliding window: overlap must be within [0, 1)");
  if (o.mode != "constant" && o.mode != "gaussian") throw UsageError("sliding window: blend mode must be constant or gaussian");
  std::array<std::int64_t, 3> size{}, pad_lo{}, pad_hi{};
  for (int d = 0; d < 3; ++d) {
    const std::int64_t n = input.size(d + 2), diff = std::max<std::int64_t>(o.roi[d] - n, 0);
    pad_lo[d] = diff / 2;
    pad_hi[d] = diff - diff / 2;
    size[d] = std::max(n, o.roi[d]);
  }
  torch::Tensor x = input;
  bool padded = false;
  for (int d = 0; d < 3; ++d) padded |= pad_lo[d] + pad_hi[d] > 0;
  if (padded) x = torch::constant_pad_nd(input, {pad_lo[2], pad_hi[2], pad_lo[1], pad_hi[1], pad_lo[0], pad_hi[0]}, 0);
  // Window starts per axis.
  std::array<std::vector<std::int64_t>, 3> starts;
  for (int d = 0; d < 3; ++d) {
    std::int64_t interval = size[d] == o.roi[d] ? o.roi[d] : static_cast<std::int64_t>(static_cast<double>(o.roi[d]) * (1.0 - o.overlap));
    if (interval <= 0) interval = 1;
    const std::int64_t num = (size[d] + interval - 1) / interval;
    std::int64_t count = 1;
    for (std::int64_t k = 0; k < num; ++k)
      if (k * interval + o.roi[d] >= size[d]) {
        count = k + 1;
        break;
      }
    for (std::int64_t k = 0; k < count; ++k) {
      std::int64_t s = k * interval;
      s -= std::max<std::int64_t>(s + o.roi[d] - size[d], 0);
      starts[d].push_back(s);
    }
  }
  torch::Tensor importance = torch::ones({o.roi[0], o.roi[1], o.roi[2]}, input.options().dtype(torch::kFloat32));
  // MONAI's Gaussian map: per-axis exp(-x^2 / (2 sigma^2)) over centred coordinates, outer product, clamped.
  if (o.mode == "gaussian") {
    torch::Tensor gx = torch::exp(torch::arange(-(o.roi[0] - 1) / 2.0, (o.roi[0] - 1) / 2.0 + 1, 1.0, importance.options()).pow(2) /
                                  (-2 * std::pow(o.roi[0] * o.sigma_scale, 2)));
    torch::Tensor gy = torch::exp(torch::arange(-(o.roi[1] - 1) / 2.0, (o.roi[1] - 1) / 2.0 + 1, 1.0, importance.options()).pow(2) /
                                  (-2 * std::pow(o.roi[1] * o.sigma_scale, 2)));
    torch::Tensor gz = torch::exp(torch::arange(-(o.roi[2] - 1) / 2.0, (o.roi[2] - 1) / 2.0 + 1, 1.0, importance.options()).pow(2) /
                                  (-2 * std::pow(o.roi[2] * o.sigma_scale, 2)));
    importance = gx.view({-1, 1, 1}) * gy.view({1, -1, 1}) * gz.view({1, 1, -1});
    const double min_nz = std::max(importance.min().item<double>(), 1e-3);
    importance = importance.clamp_min(min_nz);
  }
  std::vector<std::array<std::int64_t, 3>> windows;
  for (auto a : starts[0])
    for (auto b : starts[1])
      for (auto c : starts[2]) windows.push_back({a, b, c});
  torch::Tensor out, count;
  for (std::size_t w0 = 0; w0 < windows.size(); w0 += static_cast<std::size_t>(std::max(1, o.sw_batch))) {
    const std::size_t w1 = std::min(windows.size(), w0 + static_cast<std::size_t>(std::max(1, o.sw_batch)));
    std::vector<torch::Tensor> patches;
    for (std::size_t w = w0; w < w1; ++w)
      patches.push_back(x.slice(2, windows[w][0], windows[w][0] + o.roi[0])
                            .slice(3, windows[w][1], windows[w][1] + o.roi[1])
                            .slice(4, windows[w][2], windows[w][2] + o.roi[2]));
    torch::Tensor pred = predictor(torch::cat(patches, 0)).to(torch::kFloat32);
    if (!out.defined()) {
      out = torch::zeros({1, pred.size(1), size[0], size[1], size[2]}, pred.options());
      count = torch::zeros({1, 1, size[0], size[1], size[2]}, pred.options());
    }
    for (std::size_t w = w0; w < w1; ++w) {
      auto region = [&](torch::Tensor& t) {
        return t.slice(2, windows[w][0], windows[w][0] + o.roi[0]).slice(3, windows[w][1], windows[w][1] + o.roi[1]).slice(4, windows[w][2], windows[w][2] + o.roi[2]);
      };
      region(out).add_(pred[static_cast<std::int64_t>(w - w0)].unsqueeze(0) * importance);
      region(count).add_(importance);
    }
  }
  out = out / count;
  return out.slice(2, pad_lo[0], pad_lo[0] + input.size(2)).slice(3, pad_lo[1], pad_lo[1] + input.size(3)).slice(4, pad_lo[2], pad_lo[2] + input.size(4));
}

}  // namespace segscale::model
