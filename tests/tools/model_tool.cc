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
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "infer/tta.h"
#include "io/file.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "model/loss.h"
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

int main(int argc, char** argv) {
  try {
    std::string cmd = argc > 1 ? argv[1] : "";
    at::set_num_threads(1);
    if (cmd == "init" && argc == 4) {
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
    } else if (cmd == "sliding" && argc == 10) {  // WEIGHTS IN.npy OUT.npy RX RY RZ OVERLAP MODE
      model::UNet net(model::UNetConfig{});
      model::load_weights(*net, argv[2]);
      torch::NoGradGuard g;
      model::SlidingWindowOptions o;
      o.roi = {std::stoll(argv[5]), std::stoll(argv[6]), std::stoll(argv[7])};
      o.overlap = std::stod(argv[8]);
      o.mode = argv[9];
      o.sw_batch = 2;
      save_npy(argv[4], model::sliding_window_inference(load_npy(argv[3]), [&](const torch::Tensor& b) { return net->forward(b); }, o));
    } else if (cmd == "tta" && argc == 11) {  // WEIGHTS IN.npy OUT.npy RX RY RZ OVERLAP MODE TTA: probabilities
      model::UNet net(model::UNetConfig{});
      model::load_weights(*net, argv[2]);
      torch::NoGradGuard g;
      model::SlidingWindowOptions o;
      o.roi = {std::stoll(argv[5]), std::stoll(argv[6]), std::stoll(argv[7])};
      o.overlap = std::stod(argv[8]);
      o.mode = argv[9];
      o.sw_batch = 2;
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
      std::fprintf(stderr, "usage: model_tool init|forward|loss|metric|order|batches ...\n");
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_tool: %s\n", e.what());
    return 1;
  }
  return 0;
}
