// Test helper for the model parity tests against MONAI: initialise, run forward, and evaluate the loss and
// metric on arrays given as .npy files.
//   model_tool init SEED OUT.pt
//   model_tool forward WEIGHTS.pt IN.npy OUT.npy
//   model_tool loss LOGITS.npy TARGET.npy GRAD_OUT.npy     (prints {"loss": ...})
//   model_tool metric LOGITS.npy TARGET.npy                 (prints per-sample Dice and the summary)
//   model_tool tta WEIGHTS.pt IN.npy OUT.npy RX RY RZ OVERLAP MODE none|flip   (sigmoid probabilities, infer/tta.h)
//   model_tool order N SEED EPOCH RANK WORLD DROP_LAST      (prints the loader's epoch order for that rank)
//   model_tool batches STORE SEED EPOCH RANK WORLD BATCH OUT  (the training loader's batches over the whole store:
//                                                             OUT/batch_B_image.npy, OUT/batch_B_label.npy; prints the keys)
// Any network by its config (model/network.h; tensors as torch.save(tensor) files, any float dtype):
//   model_tool init-net CONFIG.json SEED OUT.pt   (make_network after torch::manual_seed(SEED), save_weights; prints
//                                                  {"parameters", "tensors", "buffers", "aliases", "config", "divisors"})
//   model_tool nnunet-predict CONFIG.json WEIGHTS.pt IN.pt PX PY PZ MIRROR OUT.pt   (nnU-Net's sliding window, float16 logits)
//   model_tool run-net CONFIG.json WEIGHTS.pt IN.pt eval|train OUTDIR [FIXED.pt]
//       the net in IN's dtype and eval or train mode: OUTDIR/out.pt = forward (eval) or forward_train (train);
//       with FIXED: backward of sum(out * FIXED), OUTDIR/grad_input.pt and OUTDIR/grads.pt (name -> gradient);
//       OUTDIR/state.pt = save_weights afterwards (BatchNorm running statistics after a training pass).
// Exit codes: 0, 1 (Error), 2 (UsageError, e.g. a bad network config; one line on stderr).
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "infer/nnunet_predict.h"
#include "infer/tta.h"
#include "io/file.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "model/loss.h"
#include "model/network.h"
#include "model/sliding_window.h"
#include "model/unet.h"
#include "model/weights.h"
#include "util/error.h"

using namespace segscale;

static torch::Tensor load_npy(const std::string& path) {
  auto b = io::read_file(path);
  auto h = io::parse_npy_header(b, path);
  if (h.descr != "<f4" || h.fortran_order) throw Error(path + ": model_tool reads C-order float32 only");
  return torch::from_blob(b.data() + h.data_offset, h.shape, torch::kFloat32).clone();
}

static void save_npy(const std::string& path, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat32).contiguous();
  std::vector<std::int64_t> shape(c.sizes().begin(), c.sizes().end());
  io::write_npy(path, shape, {c.data_ptr<float>(), static_cast<std::size_t>(c.numel())});
}

static c10::IValue load_pickle(const std::string& path) {
  auto b = io::read_file(path);
  return torch::pickle_load(std::vector<char>(b.begin(), b.end()));
}

static void save_pickle(const std::string& path, const c10::IValue& v) {
  std::vector<char> bytes = torch::pickle_save(v);
  io::write_file_atomic(path, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

static std::shared_ptr<model::Network> network_from(const std::string& config_path) {
  auto b = io::read_file(config_path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(std::string(b.begin(), b.end()));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(config_path + ": not JSON: " + e.what());
  }
  return model::make_network(j);
}

// nnunet-predict CONFIG WEIGHTS IN.pt PX PY PZ MIRROR OUT.pt: infer/nnunet_predict.h on IN [C, X, Y, Z] (float32),
// the net in eval mode; MIRROR 1 mirrors all three axes. Also writes OUT.gaussian.pt (the importance map).
static int nnunet_predict(char** argv) {
  auto net = network_from(argv[2]);
  model::load_weights(*net, argv[3]);
  net->eval();
  torch::NoGradGuard g;
  const torch::Tensor x = load_pickle(argv[4]).toTensor();
  infer::NnunetPredictOptions o;
  o.patch = {std::stoll(argv[5]), std::stoll(argv[6]), std::stoll(argv[7])};
  if (std::string(argv[8]) == "0") o.mirror_axes.clear();
  save_pickle(argv[9], infer::nnunet_predict_logits(x, [&](const torch::Tensor& t) { return net->forward(t); }, o));
  save_pickle(std::string(argv[9]) + ".gaussian.pt", infer::nnunet_gaussian(o.patch));
  return 0;
}

static int run_net(char** argv, int argc) {  // CONFIG WEIGHTS IN MODE OUTDIR [FIXED]
  auto net = network_from(argv[2]);
  model::load_weights(*net, argv[3]);
  torch::Tensor x = load_pickle(argv[4]).toTensor();
  const std::string mode = argv[5], out_dir = argv[6];
  if (mode != "eval" && mode != "train") throw UsageError("run-net: MODE must be eval or train");
  net->to(x.scalar_type());
  net->train(mode == "train");
  const bool backward = argc == 8;
  if (backward) x.set_requires_grad(true);
  torch::Tensor out = mode == "train" ? net->forward_train(x) : net->forward(x);
  save_pickle(out_dir + "/out.pt", out.detach());
  if (backward) {
    (out * load_pickle(argv[7]).toTensor().to(out.scalar_type())).sum().backward();
    save_pickle(out_dir + "/grad_input.pt", x.grad());
    c10::Dict<std::string, at::Tensor> grads;
    for (const auto& p : net->named_parameters())
      if (p.value().grad().defined()) grads.insert(p.key(), p.value().grad());
    save_pickle(out_dir + "/grads.pt", grads);
  }
  model::save_weights(*net, out_dir + "/state.pt");
  return 0;
}

int main(int argc, char** argv) {
  try {
    std::string cmd = argc > 1 ? argv[1] : "";
    at::set_num_threads(1);
    if (cmd == "init-net" && argc == 5) {
      torch::manual_seed(std::stoll(argv[3]));
      auto net = network_from(argv[2]);
      model::save_weights(*net, argv[4]);
      nlohmann::json j{{"parameters", model::parameter_count(*net)},
                       {"tensors", net->named_parameters().size()},
                       {"buffers", net->named_buffers().size()},
                       {"aliases", net->state_dict_aliases().size()},
                       {"config", net->config()},
                       {"divisors", net->divisors()}};
      fmt::print("{}\n", j.dump());
    } else if (cmd == "nnunet-predict" && argc == 10) {
      return nnunet_predict(argv);
    } else if (cmd == "run-net" && (argc == 7 || argc == 8)) {
      return run_net(argv, argc);
    } else if (cmd == "init" && argc == 4) {
      torch::manual_seed(std::stoll(argv[2]));
      model::UNet net(model::UNetConfig{});
      model::save_weights(*net, argv[3]);
      fmt::print("{{\"parameters\": {}, \"tensors\": {}}}\n", model::parameter_count(*net), net->parameter_names().size());
    } else if (cmd == "forward" && argc == 5) {
      model::UNet net(model::UNetConfig{});
      model::load_weights(*net, argv[2]);
      torch::NoGradGuard g;
      save_npy(argv[4], net->forward(load_npy(argv[3])));
    } else if (cmd == "loss" && argc == 5) {
      auto logits = load_npy(argv[2]).set_requires_grad(true);
      auto loss = model::dice_loss(logits, load_npy(argv[3]));
      loss.backward();
      save_npy(argv[4], logits.grad());
      fmt::print("{{\"loss\": {:.17g}}}\n", loss.item<double>());
    } else if (cmd == "metric" && argc == 4) {
      auto rows = model::dice_per_sample(model::binarize(load_npy(argv[2])), load_npy(argv[3]));
      auto s = model::summarize_dice(rows);
      nlohmann::json j{{"rows", rows}, {"per_channel", s.per_channel}, {"mean", s.mean}};
      fmt::print("{}\n", j.dump());
    } else if ((cmd == "sliding" && argc == 10) || (cmd == "tta" && argc == 11)) {
      // WEIGHTS IN.npy OUT.npy RX RY RZ OVERLAP MODE [TTA]: logits, or with TTA the probabilities
      model::UNet net(model::UNetConfig{});
      model::load_weights(*net, argv[2]);
      torch::NoGradGuard g;
      model::SlidingWindowOptions o;
      o.roi = {std::stoll(argv[5]), std::stoll(argv[6]), std::stoll(argv[7])};
      o.overlap = std::stod(argv[8]);
      o.mode = argv[9];
      o.sw_batch = 2;
      if (cmd == "sliding") {
        save_npy(argv[4], model::sliding_window_inference(load_npy(argv[3]), [&](const torch::Tensor& b) { return net->forward(b); }, o));
        return 0;
      }
      auto predict = [&](const torch::Tensor& v) { return model::sliding_window_inference(v, [&](const torch::Tensor& b) { return net->forward(b); }, o); };
      save_npy(argv[4], infer::tta_probabilities(load_npy(argv[3]), predict, argv[10]));
    } else if (cmd == "order" && argc == 8) {  // N SEED EPOCH RANK WORLD DROP_LAST
      auto v = loader::distributed_order(std::stoll(argv[2]), std::stoull(argv[3]), std::stoll(argv[4]), true, std::stoi(argv[5]),
                                         std::stoi(argv[6]), std::string(argv[7]) == "1");
      fmt::print("{}\n", nlohmann::json(v).dump());
    } else if (cmd == "batches" && argc == 9) {
      auto store = std::make_shared<store::StoreReader>(argv[2]);
      loader::LoaderOptions o;
      o.seed = std::stoull(argv[3]);
      o.rank = std::stoi(argv[5]);
      o.world = std::stoi(argv[6]);
      o.batch = std::stoi(argv[7]);
      o.mode = loader::training_mode(*store);
      o.pipeline = transforms::Pipeline::from_json(store->manifest()["settings"]["pipeline"], "manifest");
      std::vector<std::size_t> all(store->samples().size());
      for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
      loader::Loader l(store, all, o);
      l.start_epoch(std::stoll(argv[4]));
      nlohmann::json keys = nlohmann::json::array();
      while (auto b = l.next()) {
        save_npy(fmt::format("{}/batch_{}_image.npy", argv[8], b->index), b->image);
        save_npy(fmt::format("{}/batch_{}_label.npy", argv[8], b->index), b->label);
        keys.push_back(b->keys);
      }
      fmt::print("{}\n", keys.dump());
    } else {
      std::fprintf(stderr, "usage: model_tool init|forward|loss|metric|order|batches|init-net|run-net ...\n");
      return 2;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "model_tool: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_tool: %s\n", e.what());
    return 1;
  }
  return 0;
}
