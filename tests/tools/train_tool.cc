// Test helper for the training parts' parity tests against MONAI and PyTorch (tests/oracle/test_losses_monai.py).
// Arrays travel as raw little-endian float64 files.
//   train_tool loss SPEC.json       SPEC: {"loss": {LossConfig JSON}, "input": F, "shape": [...], "target": F,
//                                   "target_shape": [...], "grad": OUT}; float64 throughout; writes d loss / d input
//                                   to OUT and prints {"loss": ...}
//   train_tool nnunet-ds-loss SPEC.json  SPEC: {"batch": bool, "heads": [{"input", "target", "shape", "grad"}...]}: nnU-Net's
//                                   deep-supervision DC_and_BCE loss (model/nnunet_loss.h); prints {"loss", "weights"}
//   train_tool clip SPEC.json       SPEC: {"max_norm", "grads": [{"file", "shape", "out"}...]}: clip_grad_norm_; prints {"norm"}
//   train_tool schedule KIND EPOCHS WARMUP MIN_LR BASE_LR   prints the rate of every epoch as a JSON list
//   train_tool nnunet-steps SPEC.json  SPEC: {"net": PlainConvUNet config, "init": weights file, "lr", "batch_dice", "x_shape",
//                                   "y_shape", "batches": [{"x": F, "y": F}...]}: the nnunet recipe's SGD, DC_and_BCE with deep
//                                   supervision and clipping at 12 (TrainStep), one step per batch; prints {"losses": [...]}
//   train_tool sgd SPEC.json        SPEC: {"lr", "momentum", "nesterov", "weight_decay", "steps", "params": F, "n": N,
//                                   "a": F, "out": OUT}; SGD (torch::optim::SGD) on the loss
//                                   (sum(a p))^2 + sum(p^3) for `steps` steps; writes the parameters to OUT
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/file.h"
#include "model/loss.h"
#include "model/nnunet_loss.h"
#include "model/network.h"
#include "model/weights.h"
#include "train/schedule.h"
#include "train/setup.h"
#include "train/step.h"
#include "util/error.h"

using namespace segscale;
using nlohmann::json;

static torch::Tensor read_f64(const std::string& path, const std::vector<std::int64_t>& shape) {
  auto b = io::read_file(path);
  auto t = torch::empty(shape, torch::kFloat64);
  if (b.size() != static_cast<std::size_t>(t.numel()) * 8) throw Error(path + ": size does not match the shape");
  std::memcpy(t.data_ptr<double>(), b.data(), b.size());
  return t;
}

static void write_f64(const std::string& path, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat64).contiguous();
  io::write_file_atomic(path, std::string(reinterpret_cast<const char*>(c.data_ptr<double>()), static_cast<std::size_t>(c.numel()) * 8));
}

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    at::set_num_threads(1);
    if (cmd == "loss" && argc == 3) {
      const json spec = json::parse(std::ifstream(argv[2]));
      const auto cfg = model::LossConfig::from_json(spec["loss"], "spec", model::LossConfig{});
      auto x = read_f64(spec["input"], spec["shape"].get<std::vector<std::int64_t>>()).set_requires_grad(true);
      auto y = read_f64(spec["target"], spec["target_shape"].get<std::vector<std::int64_t>>());
      auto loss = model::segmentation_loss(x, y, cfg);
      loss.backward();
      write_f64(spec["grad"], x.grad());
      fmt::print("{{\"loss\": {:.17g}}}\n", loss.item<double>());
    } else if (cmd == "nnunet-ds-loss" && argc == 3) {  // model/nnunet_loss.h's deep-supervision loss over several heads
      const json spec = json::parse(std::ifstream(argv[2]));
      std::vector<torch::Tensor> outs, targets;
      for (const auto& h : spec["heads"]) {
        outs.push_back(read_f64(h["input"], h["shape"].get<std::vector<std::int64_t>>()).set_requires_grad(true));
        targets.push_back(read_f64(h["target"], h["shape"].get<std::vector<std::int64_t>>()));
      }
      auto loss = model::nnunet_deep_supervision_loss(outs, targets, spec["batch"].get<bool>());
      loss.backward();
      for (std::size_t i = 0; i < outs.size(); ++i)
        write_f64(spec["heads"][i]["grad"], outs[i].grad().defined() ? outs[i].grad() : torch::zeros_like(outs[i]));
      fmt::print("{}\n", json{{"loss", loss.item<double>()}, {"weights", model::nnunet_deep_supervision_weights(outs.size())}}.dump());
    } else if (cmd == "clip" && argc == 3) {  // TrainStep's clipping: torch::nn::utils::clip_grad_norm_ over several tensors
      const json spec = json::parse(std::ifstream(argv[2]));
      std::vector<torch::Tensor> ps;
      for (const auto& g : spec["grads"]) {
        auto p = torch::zeros(g["shape"].get<std::vector<std::int64_t>>(), torch::kFloat64).set_requires_grad(true);
        p.mutable_grad() = read_f64(g["file"], g["shape"].get<std::vector<std::int64_t>>());
        ps.push_back(p);
      }
      const double norm = torch::nn::utils::clip_grad_norm_(ps, spec["max_norm"].get<double>());
      for (std::size_t i = 0; i < ps.size(); ++i) write_f64(spec["grads"][i]["out"], ps[i].grad());
      fmt::print("{}\n", json{{"norm", norm}}.dump());
    } else if (cmd == "schedule" && argc == 7) {
      train::Schedule s;
      s.kind = argv[2];
      s.epochs = std::stoll(argv[3]);
      s.warmup_epochs = std::stoll(argv[4]);
      s.min_lr = std::stod(argv[5]);
      std::vector<double> lrs;
      for (std::int64_t e = 0; e < s.epochs; ++e) lrs.push_back(train::scheduled_lr(s, std::stod(argv[6]), e));
      fmt::print("{}\n", json(lrs).dump());
    } else if (cmd == "nnunet-steps" && argc == 3) {  // the nnunet recipe's step on given batches: learning parity with nnUNetTrainer
      const json spec = json::parse(std::ifstream(argv[2]));
      auto net = model::make_network(spec["net"]);
      model::load_weights(*net, spec["init"].get<std::string>());
      train::TrainOptions to;  // the recipe's optimiser (train/recipe.cc), built as the trainer builds it
      to.optimizer = "sgd";
      to.lr = spec["lr"].get<double>();
      to.momentum = 0.99;
      to.nesterov = true;
      to.weight_decay = 3e-5;
      auto opt = train::build_optimizer(to, *net);
      const auto lc = model::LossConfig::from_json(
          json{{"name", "dc_and_bce"}, {"sigmoid", true}, {"batch", spec["batch_dice"]}, {"smooth_nr", 1e-5}, {"smooth_dr", 1e-5}}, "spec",
          model::LossConfig{});
      train::TrainStep step(*net, *opt, train::build_loss(lc), train::AmpSettings{}, nullptr, 12.0);
      train::Position pos;
      net->train();
      std::vector<double> losses, seconds;
      const auto xs = spec["x_shape"].get<std::vector<std::int64_t>>(), ys = spec["y_shape"].get<std::vector<std::int64_t>>();
      if (spec.contains("threads")) at::set_num_threads(spec["threads"].get<int>());
      for (const auto& b : spec["batches"]) {
        const auto x = read_f64(b["x"], xs).to(torch::kFloat32), y = read_f64(b["y"], ys).to(torch::kFloat32);
        const auto t0 = std::chrono::steady_clock::now();
        losses.push_back(step.run(x, y, pos).loss.item<double>());
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      fmt::print("{}\n", json{{"losses", losses}, {"seconds", seconds}}.dump());
    } else if (cmd == "sgd" && argc == 3) {
      const json spec = json::parse(std::ifstream(argv[2]));
      const std::int64_t n = spec["n"];
      auto p = read_f64(spec["params"], {n}).set_requires_grad(true);
      auto a = read_f64(spec["a"], {n});
      torch::optim::SGD opt({p}, torch::optim::SGDOptions(spec["lr"].get<double>())
                                     .momentum(spec["momentum"].get<double>())
                                     .nesterov(spec["nesterov"].get<bool>())
                                     .weight_decay(spec["weight_decay"].get<double>()));
      for (int s = 0; s < spec["steps"].get<int>(); ++s) {
        opt.zero_grad();
        auto loss = (a * p).sum().pow(2) + p.pow(3).sum();
        loss.backward();
        opt.step();
      }
      write_f64(spec["out"], p);
    } else {
      fmt::print(stderr, "usage: train_tool loss SPEC.json | nnunet-ds-loss SPEC.json | clip SPEC.json | schedule KIND EPOCHS WARMUP MIN_LR BASE_LR | sgd SPEC.json\n");
      return 2;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "train_tool: {}\n", e.what());
    return 1;
  }
}
