#include "train/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/file.h"
#include "util/error.h"

namespace segscale::train {
namespace fs = std::filesystem;
using nlohmann::json;

void save_checkpoint(const fs::path& path, model::Network& net, torch::optim::Optimizer& opt, const Position& pos, const json& config) {
  torch::serialize::OutputArchive a;
  for (const auto& p : net.named_parameters()) a.write("model/" + p.key(), p.value().detach().cpu());
  for (const auto& b : net.named_buffers()) a.write("buffer/" + b.key(), b.value().detach().cpu());
  torch::serialize::OutputArchive oa;
  opt.save(oa);
  a.write("optimizer", oa);
  a.write("epoch", c10::IValue(pos.epoch));
  a.write("batch", c10::IValue(pos.batch));
  a.write("step", c10::IValue(pos.step));
  a.write("best", c10::IValue(pos.best));
  a.write("best_per_class", c10::IValue(std::vector<double>(pos.best_per_class.begin(), pos.best_per_class.end())));
  a.write("config", c10::IValue(config.dump()));
  a.write("loss_scale", c10::IValue(pos.loss_scale));
  a.write("good_steps", c10::IValue(pos.good_steps));
  a.write("ema", c10::IValue(pos.ema));
  // Serialised in memory, then written like every other file (temporary name, fsync, rename).
  std::string bytes;
  a.save_to([&](const void* p, std::size_t n) {
    bytes.append(static_cast<const char*>(p), n);
    return n;
  });
  io::write_file_atomic(path, bytes);
}

namespace {
// A JSON value short enough for a one-line message (a whole pipeline or model block is not).
std::string shorten(const std::string& s) { return s.size() <= 120 ? s : s.substr(0, 117) + "..."; }
}  // namespace

Position load_checkpoint(const fs::path& path, model::Network& net, torch::optim::Optimizer& opt, const json& config) {
  if (!fs::exists(path)) throw error_at(path.string(), "no checkpoint to resume from (train without --resume first)");
  torch::serialize::InputArchive a;
  const io::Bytes raw = io::read_file(path);
  try {
    a.load_from(reinterpret_cast<const char*>(raw.data()), raw.size());
  } catch (const c10::Error& e) {
    throw error_at(path.string(), std::string("unreadable checkpoint: ") + e.what_without_backtrace());
  }
  c10::IValue v;
  a.read("config", v);
  const json saved = json::parse(v.toStringRef());
  // Every difference at once, each with the run's value and this invocation's.
  std::vector<std::string> differ;
  for (const char* k : kResumeKeys)
    if (saved.contains(k) && (!config.contains(k) || saved[k] != config[k]))
      differ.push_back(fmt::format("{} ({} in the checkpoint, {} now)", k, shorten(saved[k].dump()),
                                   config.contains(k) ? shorten(config[k].dump()) : "none"));
  if (!differ.empty())
    throw error_at(path.string(), fmt::format("--resume with different settings: {}{}; drop those flags to continue the run as it was",
                                              fmt::join(differ, "; "),
                                              saved.contains("recipe") && saved["recipe"] != config.value("recipe", json())
                                                  ? fmt::format("; the run was started with --recipe {}", saved["recipe"].get<std::string>())
                                                  : std::string()));
  torch::NoGradGuard g;
  for (auto& p : net.named_parameters()) {
    torch::Tensor t;
    a.read("model/" + p.key(), t);
    p.value().copy_(t);
  }
  for (auto& b : net.named_buffers()) {
    torch::Tensor t;
    if (a.try_read("buffer/" + b.key(), t)) b.value().copy_(t);  // absent in checkpoints of buffer-less nets
  }
  torch::serialize::InputArchive oa;
  a.read("optimizer", oa);
  opt.load(oa);
  Position pos;
  a.read("epoch", v);
  pos.epoch = v.toInt();
  a.read("batch", v);
  pos.batch = v.toInt();
  a.read("step", v);
  pos.step = v.toInt();
  a.read("best", v);
  pos.best = v.toDouble();
  a.read("best_per_class", v);
  auto bp = v.toDoubleVector();
  for (std::size_t i = 0; i < 3 && i < bp.size(); ++i) pos.best_per_class[i] = bp[i];
  if (a.try_read("loss_scale", v)) pos.loss_scale = v.toDouble();  // absent in checkpoints before fp16 scaler state
  if (a.try_read("good_steps", v)) pos.good_steps = v.toInt();
  if (a.try_read("ema", v)) pos.ema = v.toDouble();  // absent in checkpoints before nnU-Net's EMA
  return pos;
}

}  // namespace segscale::train
