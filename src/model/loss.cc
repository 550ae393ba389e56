#include "model/loss.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/nnunet_loss.h"
#include "util/error.h"

namespace segscale::model {
using nlohmann::json;

namespace {

std::vector<std::int64_t> reduce_dims(const torch::Tensor& t, bool batch) {
  std::vector<std::int64_t> dims;
  if (batch) dims.push_back(0);
  for (std::int64_t d = 2; d < t.dim(); ++d) dims.push_back(d);
  return dims;
}

torch::Tensor drop_background(const torch::Tensor& t, const LossConfig& c) {
  return !c.include_background && t.size(1) > 1 ? t.slice(1, 1) : t;
}

// MONAI's DiceLoss.forward (to_onehot_y=False, no weight, reduction "mean").
torch::Tensor monai_dice(const torch::Tensor& logits, const torch::Tensor& target, const LossConfig& c) {
  torch::Tensor p = logits;
  if (c.sigmoid) p = torch::sigmoid(p);
  if (c.softmax && p.size(1) > 1) p = torch::softmax(p, 1);
  p = drop_background(p, c);
  const torch::Tensor t = drop_background(target.to(logits.dtype()), c);
  const auto dims = reduce_dims(p, c.batch);
  const torch::Tensor inter = (t * p).sum(dims);
  torch::Tensor denom = c.squared_pred ? (t * t).sum(dims) + (p * p).sum(dims) : t.sum(dims) + p.sum(dims);
  if (c.jaccard) denom = 2.0 * (denom - inter);
  return (1.0 - (2.0 * inter + c.smooth_nr) / (denom + c.smooth_dr)).mean();
}

// DiceCELoss.ce / .bce: CrossEntropyLoss with class-probability targets over C > 1 channels, else BCEWithLogits.
torch::Tensor monai_ce(const torch::Tensor& logits, const torch::Tensor& target) {
  const torch::Tensor t = target.to(logits.dtype());
  if (logits.size(1) == 1) return torch::binary_cross_entropy_with_logits(logits, t);
  return -(t * torch::log_softmax(logits, 1)).sum(1).mean();
}

// FocalLoss(use_softmax=False, reduction "mean"): sigmoid_focal_loss, mean over every element.
torch::Tensor monai_focal(const torch::Tensor& logits, const torch::Tensor& target, const LossConfig& c) {
  const torch::Tensor x = drop_background(logits, c);
  const torch::Tensor t = drop_background(target.to(logits.dtype()), c);
  torch::Tensor loss = x - x * t - torch::log_sigmoid(x);  // BCE with logits
  const torch::Tensor invprobs = torch::log_sigmoid(-x * (t * 2 - 1));
  loss = (invprobs * c.gamma).exp() * loss;
  if (c.alpha) loss = (t * *c.alpha + (1 - t) * (1 - *c.alpha)) * loss;
  return loss.mean();
}

torch::Tensor one_head(const torch::Tensor& logits, const torch::Tensor& target, const LossConfig& c) {
  if (logits.sizes() != target.sizes())
    throw Error(fmt::format("loss: the network's output {} and the label {} differ in shape", fmt::join(logits.sizes(), "x"), fmt::join(target.sizes(), "x")));
  if (c.name == "dice") return monai_dice(logits, target, c);
  if (c.name == "dc_and_bce") return nnunet_dc_bce(logits, target, c.batch, c.smooth_nr);
  torch::Tensor loss = c.lambda_dice * monai_dice(logits, target, c);
  if (c.name == "dicece") return loss + c.lambda_ce * monai_ce(logits, target);
  return loss + c.lambda_focal * monai_focal(logits, target, c);
}

}  // namespace

json LossConfig::to_json() const {
  json j{{"name", name}, {"include_background", include_background}, {"sigmoid", sigmoid}, {"softmax", softmax},
         {"squared_pred", squared_pred}, {"jaccard", jaccard}, {"batch", batch}, {"smooth_nr", smooth_nr}, {"smooth_dr", smooth_dr}};
  if (name != "dice") j["lambda_dice"] = lambda_dice;
  if (name == "dicece") j["lambda_ce"] = lambda_ce;
  if (name == "dicefocal") {
    j["lambda_focal"] = lambda_focal;
    j["gamma"] = gamma;
    j["alpha"] = alpha ? json(*alpha) : json(nullptr);
  }
  return j;
}

LossConfig LossConfig::from_json(const json& j, const std::string& where, const LossConfig& base) {
  if (!j.is_object()) throw UsageError(fmt::format("{}: a loss config must be a JSON object of MONAI loss arguments", where));
  LossConfig c = base;
  for (const auto& [key, v] : j.items()) {
    try {
      if (key == "name") c.name = v.get<std::string>();
      else if (key == "include_background") c.include_background = v.get<bool>();
      else if (key == "sigmoid") c.sigmoid = v.get<bool>();
      else if (key == "softmax") c.softmax = v.get<bool>();
      else if (key == "squared_pred") c.squared_pred = v.get<bool>();
      else if (key == "jaccard") c.jaccard = v.get<bool>();
      else if (key == "batch") c.batch = v.get<bool>();
      else if (key == "smooth_nr") c.smooth_nr = v.get<double>();
      else if (key == "smooth_dr") c.smooth_dr = v.get<double>();
      else if (key == "lambda_dice") c.lambda_dice = v.get<double>();
      else if (key == "lambda_ce") c.lambda_ce = v.get<double>();
      else if (key == "lambda_focal") c.lambda_focal = v.get<double>();
      else if (key == "gamma") c.gamma = v.get<double>();
      else if (key == "alpha") c.alpha = v.is_null() ? std::nullopt : std::optional<double>(v.get<double>());
      else
        throw UsageError(fmt::format("{}: unknown loss setting `{}` (include_background, sigmoid, softmax, squared_pred, jaccard, batch, "
                                     "smooth_nr, smooth_dr, lambda_dice, lambda_ce, lambda_focal, gamma, alpha)", where, key));
    } catch (const json::exception&) {
      throw UsageError(fmt::format("{}: loss setting `{}` has the wrong type: {}", where, key, v.dump()));
    }
  }
  if (c.name != "dice" && c.name != "dicece" && c.name != "dicefocal" && c.name != "dc_and_bce")
    throw UsageError(fmt::format("{}: unknown loss `{}` (dice, dicece, dicefocal, dc_and_bce)", where, c.name));
  if (c.name == "dc_and_bce" && (!c.sigmoid || c.softmax || c.smooth_nr != c.smooth_dr))
    throw UsageError(fmt::format("{}: dc_and_bce is nnU-Net's sigmoid loss with one smooth term: sigmoid true, smooth_nr = smooth_dr "
                                 "(its `smooth`), batch for batch Dice",
                                 where));
  if (c.sigmoid && c.softmax) throw UsageError(fmt::format("{}: sigmoid and softmax: give one, not both", where));
  for (auto [k, v] : {std::pair{"lambda_dice", c.lambda_dice}, {"lambda_ce", c.lambda_ce}, {"lambda_focal", c.lambda_focal}, {"smooth_nr", c.smooth_nr},
                      {"smooth_dr", c.smooth_dr}, {"gamma", c.gamma}})
    if (!(v >= 0) || !std::isfinite(v)) throw UsageError(fmt::format("{}: {} {} is out of range: it must be 0 or more", where, k, v));
  if (c.alpha && !(*c.alpha >= 0 && *c.alpha <= 1)) throw UsageError(fmt::format("{}: alpha {} is out of range: it must be in [0, 1]", where, *c.alpha));
  return c;
}

torch::Tensor segmentation_loss(const torch::Tensor& output, const torch::Tensor& target, const LossConfig& c) {
  if (output.dim() != target.dim() + 1) return one_head(output, target, c);
  if (c.name == "dc_and_bce")
    throw Error("loss dc_and_bce: nnU-Net's deep supervision compares each head with the segmentation downsampled to its "
                "resolution (nnunet_deep_supervision_loss), not heads upsampled to the label's size: train without deep supervision");
  // DeepSupervisionLoss(weight_mode="exp"): heads already at the target's size, so no interpolation.
  torch::Tensor loss;
  for (std::int64_t h = 0; h < output.size(1); ++h) {
    const double w = std::max(std::pow(0.5, static_cast<double>(h)), 0.0625);
    torch::Tensor l = w * one_head(output.select(1, h), target, c);
    loss = loss.defined() ? loss + l : l;
  }
  return loss;
}

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
