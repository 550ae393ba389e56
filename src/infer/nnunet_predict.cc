#include "infer/nnunet_predict.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "util/error.h"

namespace segscale::infer {

std::vector<std::vector<std::int64_t>> nnunet_steps(const std::vector<std::int64_t>& image, const std::vector<std::int64_t>& tile, double step) {
  std::vector<std::vector<std::int64_t>> steps;
  for (std::size_t d = 0; d < tile.size(); ++d) {
    const double target = static_cast<double>(tile[d]) * step;
    const auto n = static_cast<std::int64_t>(std::ceil(static_cast<double>(image[d] - tile[d]) / target)) + 1;
    const std::int64_t max_start = image[d] - tile[d];
    const double actual = n > 1 ? static_cast<double>(max_start) / static_cast<double>(n - 1) : 99999999999.0;
    std::vector<std::int64_t> s;
    for (std::int64_t i = 0; i < n; ++i) s.push_back(static_cast<std::int64_t>(std::nearbyint(actual * static_cast<double>(i))));  // np.round: half to even
    steps.push_back(std::move(s));
  }
  return steps;
}

torch::Tensor nnunet_gaussian(const std::vector<std::int64_t>& tile, double sigma_scale, double value_scaling) {
  // scipy's gaussian_filter of a centred delta (truncate 4: every voxel of the tile lies within the kernel's radius),
  // divided by its maximum: the product of exp(-d^2 / 2 sigma^2) per axis.
  torch::Tensor g = torch::ones({1}, torch::kFloat64);
  for (std::size_t d = 0; d < tile.size(); ++d) {
    const double sigma = static_cast<double>(tile[d]) * sigma_scale;
    const std::int64_t centre = tile[d] / 2, radius = static_cast<std::int64_t>(4.0 * sigma + 0.5);
    torch::Tensor axis = torch::zeros({tile[d]}, torch::kFloat64);
    auto a = axis.accessor<double, 1>();
    for (std::int64_t i = 0; i < tile[d]; ++i) {
      const double x = static_cast<double>(i - centre);
      if (std::llabs(i - centre) <= radius) a[i] = std::exp(-0.5 * x * x / (sigma * sigma));
    }
    std::vector<std::int64_t> shape(d + 1, 1);
    shape[d] = tile[d];
    g = g.unsqueeze(-1) * axis.view(shape);
  }
  g = g.squeeze(0);
  g = (g / g.max() * value_scaling).to(torch::kHalf);
  const torch::Tensor zero = g == 0;
  if (zero.any().item<bool>()) g.masked_fill_(zero, g.masked_select(~zero).min().item<double>());
  return g;
}

torch::Tensor nnunet_predict_logits(const torch::Tensor& image, const std::function<torch::Tensor(const torch::Tensor&)>& net,
                                    const NnunetPredictOptions& o) {
  if (image.dim() != 4 || o.patch.size() != 3)
    throw Error(fmt::format("nnU-Net prediction: an image [C, X, Y, Z] and a 3-axis patch, got {} and {}", fmt::join(image.sizes(), "x"),
                            fmt::join(o.patch, "x")));
  // pad_nd_image: to at least the patch, centred (the odd voxel above), zeros.
  std::vector<std::int64_t> size, pad_low;
  std::vector<std::int64_t> pad;  // torch's order: last axis first, (low, high)
  for (int d = 0; d < 3; ++d) {
    const std::int64_t have = image.size(d + 1), want = std::max(have, o.patch[static_cast<std::size_t>(d)]);
    size.push_back(want);
    pad_low.push_back((want - have) / 2);
  }
  for (int d = 2; d >= 0; --d) {
    pad.push_back(pad_low[static_cast<std::size_t>(d)]);
    pad.push_back(size[static_cast<std::size_t>(d)] - image.size(d + 1) - pad_low[static_cast<std::size_t>(d)]);
  }
  const torch::Tensor data = torch::constant_pad_nd(image, pad, 0);
  const auto steps = nnunet_steps(size, o.patch, o.step);
  const torch::Tensor gaussian = o.gaussian ? nnunet_gaussian(o.patch) : torch::ones(o.patch, torch::kHalf);
  // Mirror combinations as itertools.combinations over the axes, sizes 1, 2, 3.
  std::vector<std::vector<std::int64_t>> flips;
  const auto& m = o.mirror_axes;
  for (std::size_t k = 1; k <= m.size(); ++k) {
    std::vector<bool> pick(m.size(), false);
    std::fill(pick.begin(), pick.begin() + static_cast<std::ptrdiff_t>(k), true);
    do {
      std::vector<std::int64_t> axes;
      for (std::size_t i = 0; i < m.size(); ++i)
        if (pick[i]) axes.push_back(m[i] + 2);
      flips.push_back(axes);
    } while (std::prev_permutation(pick.begin(), pick.end()));
  }
  torch::Tensor logits, counts;
  for (auto sx : steps[0])
    for (auto sy : steps[1])
      for (auto sz : steps[2]) {
        using torch::indexing::Slice;
        const torch::Tensor tile = data.index({Slice(), Slice(sx, sx + o.patch[0]), Slice(sy, sy + o.patch[1]), Slice(sz, sz + o.patch[2])})
                                       .unsqueeze(0)
                                       .contiguous();
        torch::Tensor pred = net(tile);
        for (const auto& axes : flips) pred = pred + torch::flip(net(torch::flip(tile, axes)), axes);
        if (!flips.empty()) pred = pred / static_cast<double>(flips.size() + 1);
        pred = pred[0];
        if (!logits.defined()) {
          logits = torch::zeros({pred.size(0), size[0], size[1], size[2]}, torch::kHalf);
          counts = torch::zeros({size[0], size[1], size[2]}, torch::kHalf);
        }
        if (o.gaussian) pred = pred * gaussian;
        auto region = logits.index({Slice(), Slice(sx, sx + o.patch[0]), Slice(sy, sy + o.patch[1]), Slice(sz, sz + o.patch[2])});
        region.add_(pred);  // float32 into float16, as nnU-Net's predicted_logits[sl] += prediction
        counts.index({Slice(sx, sx + o.patch[0]), Slice(sy, sy + o.patch[1]), Slice(sz, sz + o.patch[2])}).add_(gaussian);
      }
  logits.div_(counts);
  if (torch::isinf(logits).any().item<bool>())
    throw Error("nnU-Net prediction: infinite logits in float16 (as nnU-Net, which aborts here too)");
  using torch::indexing::Slice;
  return logits.index({Slice(), Slice(pad_low[0], pad_low[0] + image.size(1)), Slice(pad_low[1], pad_low[1] + image.size(2)),
                       Slice(pad_low[2], pad_low[2] + image.size(3))});
}

}  // namespace segscale::infer
