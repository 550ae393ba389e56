#include <fmt/format.h>
#include <fmt/ranges.h>

#include <signal.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>

#include "data/catalog.h"
#include "distributed/comm.h"
#include "io/file.h"
#include "env/world.h"
#include "loader/device_cache.h"
#include "loader/loader.h"
#include "model/loss.h"
#include "model/sliding_window.h"
#include "model/unet.h"
#include "model/weights.h"
#include "segscale/version.h"
#include "storage/storage.h"
#include "store/store.h"
#include "train/options.h"
#include "train/split.h"
#include "train/train.h"
#include "util/error.h"
#include "util/fault.h"
#include "util/parallel.h"
#include "util/progress.h"
#include "util/stop_signal.h"

namespace segscale::train {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Position {
  std::int64_t epoch = 0, batch = 0, step = 0;
  double best = -1;
  std::array<double, 3> best_per_class{0, 0, 0};
  double loss_scale = 65536.0;  // fp16 AMP's dynamic loss scale, as torch.cuda.amp.GradScaler's
  std::int64_t good_steps = 0;  // fp16 AMP: steps since the scale last changed
};

// Appends JSON lines; on resume, first drops lines past the checkpoint's step (a killed run may have logged them).
class MetricsLog {
 public:
  MetricsLog(const fs::path& path, bool resume, std::int64_t keep_up_to_step) : path_(path) {
    if (resume && fs::exists(path)) {
      std::ifstream in(path);
      std::string line, kept;
      while (std::getline(in, line)) {
        try {
          auto j = json::parse(line);
          if (j.value("step", std::int64_t{0}) <= keep_up_to_step) kept += line + "\n";
        } catch (const json::exception&) {
          // a torn last line from a kill: dropped
        }
      }
      io::write_file_atomic(path, kept);
    } else if (!resume) {
      io::write_file_atomic(path, std::string());
    }
    out_.open(path, std::ios::app);
    if (!out_) throw error_at(path.string(), "cannot open for appending");
  }
  void write(const json& j) {
    out_ << j.dump() << "\n";
    out_.flush();
  }

 private:
  fs::path path_;
  std::ofstream out_;
};

void save_checkpoint(const fs::path& path, model::UNetImpl& net, torch::optim::Adam& opt, const Position& pos, const json& config) {
  torch::serialize::OutputArchive a;
  for (const auto& p : net.named_parameters()) a.write("model/" + p.key(), p.value().detach().cpu());
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
  // Serialised in memory, then written like every other file (temporary name, fsync, rename): a kill or a
  // full disk leaves the previous checkpoint as it was.
  std::string bytes;
  a.save_to([&](const void* p, std::size_t n) {
    bytes.append(static_cast<const char*>(p), n);
    return n;
  });
  io::write_file_atomic(path, bytes);
}

Position load_checkpoint(const fs::path& path, model::UNetImpl& net, torch::optim::Adam& opt, const json& config) {
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
  json saved = json::parse(v.toStringRef());
  for (const char* k : {"store", "batch", "lr", "weight_decay", "amsgrad", "seed", "channels", "strides", "res_units", "val_fraction", "world"})
    if (saved.contains(k) && saved[k] != config[k])
      throw error_at(path.string(), fmt::format("--resume with a different {} ({} in the checkpoint, {} now)", k, saved[k].dump(), config[k].dump()));
  torch::NoGradGuard g;
  for (auto& p : net.named_parameters()) {
    torch::Tensor t;
    a.read("model/" + p.key(), t);
    p.value().copy_(t);
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
  return pos;
}

// The training batches: the host loader, or with --device-cache every case on the device.
std::unique_ptr<loader::BatchSource> make_train_source(const TrainOptions& o, const std::shared_ptr<store::StoreReader>& store,
                                                       const std::shared_ptr<data::Catalog>& catalog, const std::vector<std::size_t>& train,
                                                       const loader::LoaderOptions& lo, const torch::Device& device, bool lead,
                                                       TrainResult& result) {
  if (!o.device_cache)
    return std::make_unique<loader::HostSource>(store ? std::make_unique<loader::Loader>(store, train, lo) : std::make_unique<loader::Loader>(catalog, train, lo));
  const auto placement = o.device_cache_mode == "shard" ? loader::CachePlacement::kShard : loader::CachePlacement::kFull;
  auto cache = std::make_unique<loader::DeviceCache>(store, train, lo, device, placement);
  if (lead) fmt::print("device cache: {}\n", cache->describe());
  result.device_cache_bytes = cache->bytes();
  return cache;
}

}  // namespace

TrainResult run_training(const TrainOptions& o) {
  const auto t_start = Clock::now();
  check_options(o);
  const RunLength length = run_length(o);
  const StopSignalScope stop_scope;  // SIGTERM & co. end the run at the next step boundary, checkpointed
  if (o.val_mode != "crop" && o.val_mode != "full" && o.val_mode != "sliding")
    throw UsageError("--val-mode must be crop or full (sliding: the former name of full)");
  if (o.device != "cpu" && o.device != "cuda") throw UsageError("--device must be cpu or cuda");
  if (o.device == "cuda" && !torch::cuda::is_available())
    throw UsageError("--device cuda: this libtorch has no CUDA or no GPU is visible (build against a CUDA libtorch, see README)");
  if (o.amp && o.device == "cpu" && o.amp_dtype == "fp16") throw UsageError("--amp-dtype fp16 needs --device cuda (CPU autocast runs bf16)");
  if (o.device_cache && o.store.empty()) throw UsageError("--device-cache needs --store (a --cache store)");
  if (o.device_cache && o.skip_bad) throw UsageError("--device-cache reads and checks every case before training; --skip-bad does not apply");
  if (o.device_cache_mode != "full" && o.device_cache_mode != "shard") throw UsageError("--device-cache-mode must be full or shard");
  if (o.amp_dtype != "bf16" && o.amp_dtype != "fp16") throw UsageError("--amp-dtype must be bf16 or fp16");
  at::set_num_threads(resolve_threads(o.threads));
  const env::World world = env::world_from_job(env::JobEnvironment::from_process()).value_or(env::World{});
  const bool lead = world.rank == 0;  // rank 0 alone writes the run folder
  const torch::Device device = o.device == "cuda" ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank)) : torch::Device(torch::kCPU);
  std::unique_ptr<distributed::Comm> comm;
  if (world.size > 1) {
    std::string backend = o.backend == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : o.backend;
    if (backend == "nccl" && !device.is_cuda()) throw UsageError("--backend nccl needs --device cuda");
    comm = std::make_unique<distributed::Comm>(world, backend, std::chrono::seconds(o.timeout_s));
  }

  // Either a store, or raw cases with the whole chain run per sample (the case study's single-GPU mode).
  std::shared_ptr<store::StoreReader> store;
  std::shared_ptr<data::Catalog> catalog;
  json settings;
  transforms::Pipeline pipeline;
  if (!o.store.empty()) {
    store = std::make_shared<store::StoreReader>(o.store);
    settings = store->manifest()["settings"];
    pipeline = transforms::Pipeline::from_json(settings["pipeline"], (o.store / "manifest.json").string());
  } else {
    catalog = std::make_shared<data::Catalog>(data::open_catalog(o.data));
    pipeline = o.pipeline.empty() ? transforms::Pipeline::case_study() : transforms::Pipeline::from_file(o.pipeline);
    if (o.pipeline.empty()) pipeline.label_map = catalog->label_preset;
    settings = {{"mode", "raw"}, {"pipeline", pipeline.to_json()}, {"dataset", {{"modalities", catalog->modalities}}}};
  }
  const bool cache = settings.value("mode", "") == "cache";
  transforms::Shape3 roi = o.val_roi;
  if (roi[0] <= 0) {
    roi = {128, 128, 64};
    for (const auto& s : pipeline.steps)
      if (auto* c = std::get_if<transforms::RandCropStep>(&s)) roi = c->roi;
  }

  model::UNetConfig cfg;
  cfg.in_channels = static_cast<int>(settings["dataset"]["modalities"].size());
  if (cfg.in_channels == 0) cfg.in_channels = 4;
  cfg.out_channels = 3;
  cfg.channels = o.channels;
  cfg.strides = o.strides;
  cfg.num_res_units = o.res_units;
  cfg.validate();

  json config{{"tool", std::string("segscale ") + kVersion}, {"store", storage::is_url(o.store.string()) ? o.store.string() : fs::absolute(o.store.empty() ? o.data : o.store).lexically_normal().string()},
              {"epochs", length.epochs ? json(*length.epochs) : json(nullptr)}, {"batch", o.batch}, {"lr", o.lr}, {"weight_decay", o.weight_decay}, {"amsgrad", o.amsgrad},
              {"val_every", o.val_every}, {"val_fraction", o.val_fraction}, {"val_mode", o.val_mode}, {"val_roi", roi},
              {"seed", o.seed}, {"device", o.device}, {"threads", resolve_threads(o.threads)}, {"max_steps", length.steps ? json(*length.steps) : json(nullptr)},
              {"amp", o.amp}, {"amp_dtype", o.amp_dtype}, {"channels", o.channels}, {"strides", o.strides}, {"res_units", o.res_units},
              {"in_channels", cfg.in_channels}, {"out_channels", cfg.out_channels}, {"label_map", pipeline.label_map},
              {"smooth_nr", o.smooth_nr}, {"smooth_dr", o.smooth_dr}, {"store_mode", settings.value("mode", "")},
              {"pipeline", settings["pipeline"]}, {"world", world.size}, {"device_cache", o.device_cache},
              {"device_cache_mode", o.device_cache_mode}};

  // Split by case; a separate validation store is used whole.
  std::vector<store::SampleRef> refs;
  if (store) {
    refs = store->samples();
  } else {
    for (const auto& c : catalog->training) refs.push_back({c.key, c.key, 0, 0, {}, {}, {}});
  }
  Split split = split_by_case(refs, o.val_store.empty() ? o.val_fraction : 0.0, o.seed, !cache);
  std::shared_ptr<store::StoreReader> val_store = store;
  if (!o.val_store.empty()) {
    val_store = std::make_shared<store::StoreReader>(o.val_store);
    split.val.clear();
    for (std::size_t i = 0; i < val_store->samples().size(); ++i)
      if (val_store->samples()[i].copy == 0) split.val.push_back(i);
  }
  if (split.train.empty())
    throw Error(fmt::format("{}: no training samples left after the validation split", (o.store.empty() ? o.data : o.store).string()));
  const fs::path ckpt_dir = o.checkpoint_dir.empty() ? o.out : o.checkpoint_dir;
  const fs::path ckpt = ckpt_dir / "checkpoint.pt";
  const bool resume = o.resume || (o.auto_resume && fs::exists(ckpt));
  prepare_run_folder(o.out, resume, o.overwrite, lead);
  // A checkpoint folder apart from the run folder gets copies of model.pt and metrics.jsonl (see train.h).
  const bool mirror = fs::weakly_canonical(ckpt_dir) != fs::weakly_canonical(o.out);
  for (const fs::path& dir : {o.out, ckpt_dir}) {
    std::error_code ec;
    if (lead) fs::create_directories(dir, ec);
    if (ec) throw error_at(dir.string(), "cannot create run folder: " + ec.message());
  }
  if (lead && resume && mirror)
    for (const char* f : {"model.pt", "metrics.jsonl"})
      if (!fs::exists(o.out / f) && fs::exists(ckpt_dir / f)) io::write_file_atomic(o.out / f, io::read_file(ckpt_dir / f));

  // Every batch has the same shape, so cuDNN's autotuner pays for itself after the first steps (as MONAI's
  // fast-training guide sets torch.backends.cudnn.benchmark).
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  torch::manual_seed(o.seed);  // the UNet's initialisation, as set_determinism(seed) before building it
  model::UNet net(cfg);
  net->to(device);
  if (o.channels_last) {  // the same values in NDHWC order: cuDNN's faster layout for 3-D convolutions on tensor cores
    torch::NoGradGuard g;
    for (auto& p : net->parameters())
      if (p.dim() == 5) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast3d));
  }
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay).amsgrad(o.amsgrad));
  const model::DiceLossOptions loss_opts{o.smooth_nr, o.smooth_dr};

  Position pos;
  if (resume) pos = load_checkpoint(ckpt, *net, opt, config);
  std::unique_ptr<distributed::GradSync> grad_sync;
  if (comm) {
    std::vector<torch::Tensor> ps;
    for (auto& p : net->parameters()) ps.push_back(p.detach());
    comm->broadcast(ps, 0);  // every rank starts from rank 0's weights
    grad_sync = std::make_unique<distributed::GradSync>(*comm, net->parameters());
  }
  std::optional<MetricsLog> metrics;
  if (lead) {
    io::write_file_atomic(o.out / "config.json", config.dump(2) + "\n");
    metrics.emplace(o.out / "metrics.jsonl", resume, pos.step);
  }
  auto checkpoint = [&] {
    if (!lead) return;
    save_checkpoint(ckpt, *net, opt, pos, config);
    if (mirror) io::write_file_atomic(ckpt_dir / "metrics.jsonl", io::read_file(o.out / "metrics.jsonl"));
    if (o.on_saved) o.on_saved();
  };
  auto save_best = [&] {
    if (!lead) return;
    model::save_weights(*net, o.out / "model.pt");
    if (mirror) io::write_file_atomic(ckpt_dir / "model.pt", io::read_file(o.out / "model.pt"));
    if (o.on_saved) o.on_saved();
  };

  loader::LoaderOptions lo;
  lo.batch = o.batch;
  lo.threads = o.loader_threads;
  lo.seed = o.seed;
  lo.skip_bad = o.skip_bad;
  lo.drop_last = o.drop_last;
  lo.pin_memory = device.is_cuda();
  lo.mode = cache || catalog ? loader::SampleMode::kRandomStage : loader::SampleMode::kAsStored;
  lo.pipeline = pipeline;
  lo.rank = world.rank;
  lo.world = world.size;
  TrainResult result;
  const std::unique_ptr<loader::BatchSource> train_loader_owner = make_train_source(o, store, catalog, split.train, lo, device, lead, result);
  loader::BatchSource& train_loader = *train_loader_owner;
  std::unique_ptr<loader::BatchSource> val_device_cache;  // --device-cache: the validation cases, loaded at the first validation

  auto validate = [&]() -> model::DiceSummary {
    if (split.val.empty()) return {};
    loader::LoaderOptions vo = lo;
    vo.shuffle = false;
    vo.rank = 0;
    vo.world = 1;
    vo.batch = o.val_mode != "crop" ? 1 : o.batch;
    const bool val_cache = !val_store || val_store->manifest()["settings"].value("mode", "") == "cache";
    vo.mode = !val_cache ? loader::SampleMode::kAsStored : (o.val_mode != "crop" ? loader::SampleMode::kWhole : loader::SampleMode::kCenterCrop);
    vo.roi = roi;
    // Each rank evaluates every world-th validation sample (no padding, so nothing counts twice).
    std::vector<std::size_t> mine;
    for (std::size_t i = static_cast<std::size_t>(world.rank); i < split.val.size(); i += static_cast<std::size_t>(world.size))
      mine.push_back(split.val[i]);
    std::vector<std::vector<double>> rows;
    std::unique_ptr<loader::BatchSource> host_val;
    loader::BatchSource* vl = nullptr;
    if (!mine.empty() && o.device_cache && vo.mode != loader::SampleMode::kAsStored) {
      if (!val_device_cache) val_device_cache = std::make_unique<loader::DeviceCache>(val_store, mine, vo, device);
      vl = val_device_cache.get();
    } else if (!mine.empty()) {
      host_val = std::make_unique<loader::HostSource>(val_store ? std::make_unique<loader::Loader>(val_store, mine, vo)
                                                                : std::make_unique<loader::Loader>(catalog, mine, vo));
      vl = host_val.get();
    }
    if (vl) vl->start_epoch(0);
    torch::NoGradGuard g;
    while (vl) {
      auto b = vl->next();
      if (!b) break;
      if (b->keys.empty()) continue;
      torch::Tensor x = b->image.to(device);
      torch::Tensor logits;
      if (o.val_mode != "crop") {  // whole volumes, as MONAI's sliding_window_inference over the training roi
        model::SlidingWindowOptions sw;
        sw.roi = roi;
        sw.overlap = o.sw_overlap;
        logits = model::sliding_window_inference(x, [&](const torch::Tensor& b) { return net->forward(b); }, sw);
      } else {
        logits = net->forward(x);
      }
      auto r = model::dice_per_sample(model::binarize(logits), b->label.to(device));
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (comm) {  // gather every rank's rows: values and "not NaN" masks, summed into each rank's block
      const std::int64_t per = static_cast<std::int64_t>((split.val.size() + world.size - 1) / world.size);
      torch::Tensor vals = torch::zeros({world.size, per, 3}, torch::kFloat64), mask = torch::zeros({world.size, per, 3}, torch::kFloat64);
      for (std::size_t i = 0; i < rows.size(); ++i)
        for (int c = 0; c < 3; ++c)
          if (!std::isnan(rows[i][c])) {
            vals[world.rank][static_cast<std::int64_t>(i)][c] = rows[i][c];
            mask[world.rank][static_cast<std::int64_t>(i)][c] = 1.0;
          }
      comm->allreduce_sum(vals);
      comm->allreduce_sum(mask);
      rows.clear();
      for (int r = 0; r < world.size; ++r)
        for (std::int64_t i = 0; i < per; ++i) {
          if (static_cast<std::size_t>(i) * world.size + r >= split.val.size()) continue;
          std::vector<double> row(3);
          for (int c = 0; c < 3; ++c)
            row[c] = mask[r][i][c].item<double>() > 0 ? vals[r][i][c].item<double>() : std::numeric_limits<double>::quiet_NaN();
          rows.push_back(row);
        }
    }
    return model::summarize_dice(rows);
  };

  const std::int64_t per_epoch = train_loader.batches_per_epoch();
  const std::int64_t total_steps = length.total_steps(per_epoch);
  const std::int64_t first_step = pos.step;
  Progress progress("train", static_cast<std::uint64_t>(total_steps), "steps", o.quiet || !lead);
  if (pos.step > 0) progress.advance(static_cast<std::uint64_t>(pos.step));
  double sample_seconds = 0, wait_total = 0;
  std::int64_t samples_seen = 0;
  bool done = pos.step >= total_steps;
  double comm_wait = 0;
  auto end_of_epoch = [&](std::int64_t epoch) {
    if (lead) model::save_weights(*net, o.out / "last.pt");
    if ((epoch + 1) % o.val_every == 0 || length.epoch_limit_reached(epoch + 1) || done) {
      auto d = validate();
      if (!split.val.empty()) {
        json line{{"type", "val"}, {"epoch", epoch}, {"step", pos.step}, {"dice_tc", d.per_channel[0]}, {"dice_wt", d.per_channel[1]},
                  {"dice_et", d.per_channel[2]}, {"dice_mean", d.mean}, {"val_samples", split.val.size()}};
        if (metrics) metrics->write(line);
        if (d.mean > pos.best) {
          pos.best = d.mean;
          pos.best_per_class = {d.per_channel[0], d.per_channel[1], d.per_channel[2]};
          save_best();
        }
        progress.set_status(fmt::format("val dice {:.3f}", d.mean));
      }
    }
  };

  for (std::int64_t epoch = pos.epoch; !length.epoch_limit_reached(epoch) && !done; ++epoch) {
    train_loader.start_epoch(epoch, epoch == pos.epoch ? pos.batch : 0);
    net->train();
    auto t_prev = Clock::now();
    double wait_prev = 0;
    while (auto b = train_loader.next()) {
      if (b->keys.empty()) continue;
      torch::Tensor x = b->image.to(device, /*non_blocking=*/true), y = b->label.to(device, true);
      if (o.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast3d);
      opt.zero_grad();
      torch::Tensor loss;
      if (o.amp) {  // autocast for the forward pass (CUDA or CPU); the loss in float32
        const at::ScalarType amp_dtype = o.amp_dtype == "fp16" ? at::kHalf : at::kBFloat16;
        compat::set_autocast(device.type(), true, amp_dtype);
        torch::Tensor logits = net->forward(x);
        compat::set_autocast(device.type(), false, amp_dtype);  // the same dtype: libtorch 1.13 refuses any CPU one but bf16
        loss = model::dice_loss(logits.to(torch::kFloat32), y, loss_opts);
      } else {
        loss = model::dice_loss(net->forward(x), y, loss_opts);
      }
      fault_point("train.step");
      fault_point("train.hang");
      if (grad_sync) grad_sync->begin();
      // fp16 needs loss scaling (bf16 has float32's range): a dynamic scaler as torch.cuda.amp.GradScaler.
      const bool scaled = o.amp && o.amp_dtype == "fp16";
      (scaled ? loss * pos.loss_scale : loss).backward();
      double step_comm = grad_sync ? grad_sync->finish() : 0.0;
      comm_wait += step_comm;
      bool step_ok = true;
      if (scaled) {
        torch::NoGradGuard g;
        std::vector<torch::Tensor> finite;  // one flag per gradient, read back once: one device sync per step
        for (auto& p : net->parameters())
          if (p.grad().defined()) {
            p.mutable_grad().div_(pos.loss_scale);
            finite.push_back(torch::isfinite(p.grad()).all());
          }
        step_ok = finite.empty() || torch::stack(finite).all().item<bool>();
        if (!step_ok) {  // skip this step, as GradScaler does
          pos.loss_scale /= 2;
          pos.good_steps = 0;
        } else if (++pos.good_steps % 2000 == 0) {
          pos.loss_scale *= 2;
        }
      }
      if (step_ok) opt.step();
      ++pos.step;
      pos.epoch = epoch;
      pos.batch = b->index + 1;
      double loss_v = loss.item<double>();
      int stop = stop_requested();
      if (comm) {  // the logged loss is the mean over ranks (the global batch); a stop asked of any rank stops all here
        torch::Tensor l = torch::tensor({loss_v, static_cast<double>(stop)}, torch::kFloat64);
        comm->allreduce_sum(l);
        loss_v = l[0].item<double>() / world.size;
        if (stop == 0 && l[1].item<double>() > 0) stop = SIGTERM;
      }
      auto now = Clock::now();
      const double dt = std::chrono::duration<double>(now - t_prev).count();
      const double wait = train_loader.wait_seconds() - wait_prev;
      t_prev = now;
      wait_prev = train_loader.wait_seconds();
      sample_seconds += dt;
      wait_total += wait;
      samples_seen += static_cast<std::int64_t>(b->keys.size());
      result.last_loss = loss_v;
      if (metrics)
        metrics->write({{"type", "step"}, {"epoch", epoch}, {"step", pos.step}, {"loss", loss_v},
                        {"samples_per_s", static_cast<double>(b->keys.size() * world.size) / dt}, {"data_wait", dt > 0 ? wait / dt : 0.0},
                        {"comm_wait", dt > 0 ? step_comm / dt : 0.0}});
      progress.set_status(fmt::format("loss {:.4f}", loss_v));
      progress.advance();
      if (!std::isfinite(loss_v)) throw Error(fmt::format("loss became {} at step {} (learning rate too high?)", loss_v, pos.step));
      if (pos.step >= total_steps || stop) {
        done = true;
        result.stopped_by_signal = pos.step >= total_steps ? 0 : stop;
        break;
      }
      if (o.checkpoint_every > 0 && pos.step % o.checkpoint_every == 0) checkpoint();
    }
    if (result.stopped_by_signal) {
      // Asked to stop: save and leave at once (validation could eat the grace period). The position stays in
      // this epoch, so the resumed run finishes it, end-of-epoch validation included, as an uninterrupted one.
      if (lead) model::save_weights(*net, o.out / "last.pt");
      checkpoint();
      break;
    }
    if (pos.batch >= per_epoch) {  // the epoch is complete: resume at the next one
      pos.epoch = epoch + 1;
      pos.batch = 0;
    }
    end_of_epoch(epoch);  // also when --max-steps stopped the run mid-epoch: validate and save
    checkpoint();
  }
  if (lead) progress.finish();
  result.steps = pos.step - first_step;
  result.total_steps = pos.step;
  result.weights = o.out / (pos.best >= 0 ? "model.pt" : "last.pt");
  result.best_dice = pos.best;
  result.best_per_class = pos.best_per_class;
  result.samples_per_s = sample_seconds > 0 ? static_cast<double>(samples_seen) / sample_seconds : 0;
  result.data_wait_fraction = sample_seconds > 0 ? wait_total / sample_seconds : 0;
  result.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  result.comm_wait_fraction = sample_seconds > 0 ? comm_wait / sample_seconds : 0;
  result.rank = world.rank;
  result.world = world.size;
  result.checkpoint = ckpt;
  if (comm) comm->barrier();  // nobody leaves while rank 0 still writes
  return result;
}

}  // namespace segscale::train
