// run_training: the loop. Setup (setup.h, run_data.h), the step (step.h), validation (validation.h) and
// checkpoints (checkpoint.h) live in their own files; this one wires them and walks the epochs.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "distributed/comm.h"
#include "io/file.h"
#include "io/json_file.h"
#include "loader/device_cache.h"
#include "loader/loader.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/final_validation.h"
#include "train/options.h"
#include "train/plot.h"
#include "train/recipe.h"
#include "train/run_data.h"
#include "train/run_log.h"
#include "train/setup.h"
#include "train/step.h"
#include "train/train.h"
#include "train/validation.h"
#include "util/error.h"
#include "util/plural.h"
#include "util/progress.h"
#include "util/stop_signal.h"

namespace segscale::train {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

loader::LoaderOptions loader_options(const TrainOptions& o, const RunData& data, const torch::Device& device, const env::World& world) {
  loader::LoaderOptions lo;
  lo.batch = o.batch;
  lo.threads = o.loader_threads;
  lo.seed = o.seed;
  lo.skip_bad = o.skip_bad;
  lo.drop_last = o.drop_last;
  lo.pin_memory = device.is_cuda();
  lo.mode = data.cache || data.catalog ? loader::SampleMode::kRandomStage : loader::SampleMode::kAsStored;
  lo.pipeline = data.pipeline;
  lo.rank = world.rank;
  lo.world = world.size;
  return lo;
}

// The training batches: the host loader, or with --device-cache every case on the device.
std::unique_ptr<loader::BatchSource> make_train_source(const TrainOptions& o, const RunData& data, const loader::LoaderOptions& lo,
                                                       const torch::Device& device, bool lead, TrainResult& result) {
  if (data.nnunet) {
    loader::NnunetLoaderOptions no = nnunet_loader_options(o, data, lo.rank);
    const std::int64_t cases = static_cast<std::int64_t>(data.split.train.size());
    no.batches_per_epoch = o.steps_per_epoch > 0 ? o.steps_per_epoch : (cases + o.batch * lo.world - 1) / (o.batch * lo.world);
    return std::make_unique<loader::NnunetSource>(std::make_unique<loader::NnunetLoader>(data.store, data.split.train, no), lo.pin_memory);
  }
  if (!o.device_cache)
    return std::make_unique<loader::HostSource>(data.store ? std::make_unique<loader::Loader>(data.store, data.split.train, lo)
                                                           : std::make_unique<loader::Loader>(data.catalog, data.split.train, lo));
  const auto placement = o.device_cache_mode == "shard" ? loader::CachePlacement::kShard : loader::CachePlacement::kFull;
  auto cache = std::make_unique<loader::DeviceCache>(data.store, data.split.train, lo, device, placement);
  if (lead) fmt::print("device cache: {}\n", cache->describe());
  result.device_cache_bytes = cache->bytes();
  return cache;
}

// The run folder's files: checkpoint.pt (in --checkpoint-dir when given, with mirrored copies of model.pt and
// metrics.jsonl there, see train.h), model.pt (best), last.pt, metrics.jsonl. Rank 0 alone writes.
class RunFiles {
 public:
  RunFiles(const TrainOptions& o, bool lead) : o_(o), lead_(lead) {
    ckpt_dir_ = o.checkpoint_dir.empty() ? o.out : o.checkpoint_dir;
    resume_ = o.resume || (o.auto_resume && fs::exists(checkpoint()));
  }
  fs::path checkpoint() const { return ckpt_dir_ / "checkpoint.pt"; }
  bool resume() const { return resume_; }
  // Refuses or clears a previous run (see prepare_run_folder), creates the folders, restores mirrored files.
  void prepare() {
    prepare_run_folder(o_.out, resume_, o_.overwrite, lead_);
    mirror_ = fs::weakly_canonical(ckpt_dir_) != fs::weakly_canonical(o_.out);
    for (const fs::path& dir : {o_.out, ckpt_dir_}) {
      std::error_code ec;
      if (lead_) fs::create_directories(dir, ec);
      if (ec) throw error_at(dir.string(), "cannot create run folder: " + ec.message());
    }
    if (lead_ && resume_ && mirror_)
      for (const char* f : {"model.pt", "metrics.jsonl", kTensorBoardFile, "mlflow.json"})
        if (!fs::exists(o_.out / f) && fs::exists(ckpt_dir_ / f)) io::write_file_atomic(o_.out / f, io::read_file(ckpt_dir_ / f));
  }
  void save_checkpoint(model::Network& net, torch::optim::Optimizer& opt, const Position& pos, const json& config) const {
    if (!lead_) return;
    train::save_checkpoint(checkpoint(), net, opt, pos, config);
    if (mirror_)
      for (const char* f : {"metrics.jsonl", kTensorBoardFile, "mlflow.json"})
        if (fs::exists(o_.out / f)) io::write_file_atomic(ckpt_dir_ / f, io::read_file(o_.out / f));
    if (o_.on_saved) o_.on_saved();
  }
  void save_best(model::Network& net) const {
    if (!lead_) return;
    model::save_weights(net, o_.out / "model.pt");
    if (mirror_) io::write_file_atomic(ckpt_dir_ / "model.pt", io::read_file(o_.out / "model.pt"));
    if (o_.on_saved) o_.on_saved();
  }
  void save_last(model::Network& net) const {
    if (lead_) model::save_weights(net, o_.out / "last.pt");
  }

 private:
  const TrainOptions& o_;
  bool lead_;
  fs::path ckpt_dir_;
  bool resume_ = false, mirror_ = false;
};

// A case smaller than the crop comes out of the chain smaller (MONAI's random crop keeps a short axis whole), and
// the network then refuses sizes that are not multiples of its downsampling: name the cases and the fix instead.
void check_fits(const std::vector<std::string>& cases, const transforms::Shape3& s, const std::array<std::int64_t, 3>& divisors,
                const transforms::Shape3& roi) {
  bool fits = true;
  for (int a = 0; a < 3; ++a) fits = fits && s[a] % divisors[a] == 0;
  if (fits) return;
  throw Error(fmt::format("case {}: its sample is {}x{}x{} after the chain (the crop {}x{}x{} keeps an axis the case lacks whole), which the "
                          "model cannot take (each axis a multiple of {}x{}x{}): choose a crop no larger than the smallest case after "
                          "resampling (`segscale inspect DATA` shows the sizes), or drop the case",
                          fmt::join(cases, ", "), s[0], s[1], s[2], roi[0], roi[1], roi[2], divisors[0], divisors[1], divisors[2]));
}

// --data runs: every training case's size after the chain, from its header, before the first step.
void check_cases_fit(const RunData& data, const std::array<std::int64_t, 3>& divisors) {
  if (!data.catalog) return;
  for (const auto& c : data.catalog->training) {
    check_fits({c.key}, transforms::output_size(data.pipeline, c.images.front()), divisors, data.roi);
  }
}

// Throughput counters of this invocation.
struct Meter {
  double seconds = 0, wait = 0, comm = 0;
  std::int64_t samples = 0;
};

}  // namespace

namespace {
std::uint64_t step_seed(std::uint64_t seed, std::int64_t step, int rank) {  // splitmix64 over the three
  std::uint64_t z = seed ^ (static_cast<std::uint64_t>(step) * 0x9E3779B97F4A7C15ULL) ^ (static_cast<std::uint64_t>(rank) << 48);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (z ^ (z >> 31)) >> 1;  // below 2^63: manual_seed's CUDA half takes it as is
}

// An nnU-Net store's run takes what the recipe leaves to the plan (batch, batch Dice), and only what such a store
// can do; other data cannot take nnU-Net's recipe.
void resolve_for_data(TrainOptions& o, const RunData& data, const env::World& world) {
  if (!data.nnunet) {
    if (o.recipe == "nnunet")
      throw UsageError(fmt::format("--recipe nnunet trains on nnU-Net's preprocessed cases, and {} is not such a store: `segscale plan --data D "
                                   "--out P/nnUNetPlans.json`, `segscale prep --plans P/nnUNetPlans.json --data D --out STORE`, then "
                                   "--store STORE (MONAI's DynUNet pipeline on this data: --recipe monai-dynunet)",
                                   data.source.string()));
    if (o.val_mode == "pseudo") throw UsageError("--val-mode pseudo is nnU-Net's validation: it needs a store made by `segscale prep --plans`");
    if (o.steps_per_epoch > 0) throw UsageError("--steps-per-epoch: epochs of a fixed length are nnU-Net's sampler's, for stores made by `segscale prep --plans`");
    // A store keeps the chain it was prepared with: one that is not the recipe's would train silently instead.
    const std::optional<transforms::Pipeline> chain = pipeline_preset(o.pipeline_preset);
    if (data.store && chain && o.recipe_chosen && !o.store_chain && !same_chain_but_crops(data.pipeline, *chain)) {
      std::string name = "a chain of its own";
      for (const char* preset : {"case-study", "monai-brats", "nnunet"})
        if (const auto p = pipeline_preset(preset); p && same_chain_but_crops(data.pipeline, *p)) name = fmt::format("the {} chain", preset);
      throw UsageError(fmt::format("{} was prepared with {}, not the {} chain of --recipe {}: prepare a store with `segscale prep --data DATA --cache "
                                   "--pipeline {}`, or train on this store's chain with --store-chain",
                                   data.source.string(), name, o.pipeline_preset, o.recipe, o.pipeline_preset));
    }
    return;
  }
  if (o.val_mode != "pseudo")
    throw UsageError(fmt::format("--val-mode {}: an nnU-Net store validates as nnU-Net does during training (--val-mode pseudo); "
                                 "whole-volume validation of nnU-Net runs is not built yet", o.val_mode));
  if (o.device_cache) throw UsageError("--device-cache: nnU-Net stores are sampled and augmented on the host so far");
  if (o.batch == 0) {  // nnU-Net's global batch split over the ranks as nnUNetTrainer splits it
    const int global = data.nnunet->batch_size;
    if (global < world.size)
      throw UsageError(fmt::format("the plan's batch size {} is smaller than the {} processes: give --batch (per process)", global, world.size));
    o.batch = global / world.size + (global % world.size > world.rank ? 1 : 0);
  }
  if (o.loss == "dc_and_bce" && !o.loss_args.contains("batch")) o.loss_args["batch"] = data.nnunet->batch_dice;
}

}  // namespace

TrainResult run_training(const TrainOptions& options) {
  const auto t_start = Clock::now();
  check_options(options);
  TrainOptions o = options;  // the plan of an nnU-Net store fills in what the recipe leaves to it
  const RunLength length = run_length(o);
  const StopSignalScope stop_scope;  // SIGTERM & co. end the run at the next step boundary, checkpointed
  const env::World world = env::world_from_job(env::JobEnvironment::from_process()).value_or(env::World{});
  const bool lead = world.rank == 0;  // rank 0 alone writes the run folder
  const torch::Device device = setup_device(o, world);
  std::unique_ptr<distributed::Comm> comm;
  if (world.size > 1) {
    std::string backend = o.backend == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : o.backend;
    if (backend == "nccl" && !device.is_cuda()) throw UsageError("--backend nccl needs --device cuda");
    comm = std::make_unique<distributed::Comm>(world, backend, std::chrono::seconds(o.timeout_s));
  }

  // The recipe's chain for --data runs without --pipeline (a --store keeps the chain it was prepared with).
  const std::optional<transforms::Pipeline> preset = pipeline_preset(o.pipeline_preset);
  const RunData data = open_run_data(o, preset ? &*preset : nullptr);
  resolve_for_data(o, data, world);
  if (lead) fmt::print("{}\n", describe_recipe(o));
  if (lead) {
    fmt::print("{}\n", data.label_map_note);
    for (const auto& w : data.warnings) fmt::print(stderr, "segscale: warning: {}\n", w);
  }
  const json net_config = network_config(o, data);
  const model::LossConfig loss = loss_config(o);
  const std::shared_ptr<model::Network> net = build_network(o, net_config, device);  // UsageError before the run folder is touched
  for (int a = 0; a < 3; ++a)
    if (data.roi[a] % net->divisors()[a] != 0)
      throw UsageError(fmt::format("the crop {}x{}x{} does not suit the {} model: each axis must be a multiple of {}x{}x{} (its downsampling)",
                                   data.roi[0], data.roi[1], data.roi[2], o.model, net->divisors()[0], net->divisors()[1], net->divisors()[2]));
  check_cases_fit(data, net->divisors());  // before the run folder is touched, too
  if (net->config().value("deep_supervision", false) && net->config().value("name", "") == "plainconvunet" && loss.name != "dc_and_bce")
    throw UsageError(fmt::format("--loss {}: nnU-Net's deep supervision (heads at several resolutions) trains with nnU-Net's loss, "
                                 "--loss dc_and_bce (or set deep_supervision false in --model-config)",
                                 loss.name));
  RunFiles files(o, lead);
  files.prepare();
  if (lead) fmt::print("{}\n", write_splits(o.out / "splits.json", data));
  if (lead && data.nnunet) {  // what predicting with the run needs, named as in nnU-Net's results folders
    io::write_file_atomic(o.out / "plans.json", data.nnunet->plans.dump(2) + "\n");
    io::write_file_atomic(o.out / "dataset.json", data.nnunet->dataset_json + "\n");
  }
  const std::unique_ptr<torch::optim::Optimizer> opt = build_optimizer(o, *net);
  json config = run_config(o, data, length, world, *net, loss);

  Position pos;
  if (files.resume()) pos = load_checkpoint(files.checkpoint(), *net, *opt, config);
  // The run length may change on resume: said, and recorded in metrics.jsonl (config.json then holds the new one).
  json length_change;
  if (files.resume() && lead && fs::exists(o.out / "config.json")) {
    const json before = io::read_json_file(o.out / "config.json");
    if (before.value("epochs", json()) != config["epochs"] || before.value("max_steps", json()) != config["max_steps"]) {
      length_change = {{"type", "resume"}, {"step", pos.step}, {"epochs", config["epochs"]}, {"max_steps", config["max_steps"]},
                       {"previous", {{"epochs", before.value("epochs", json())}, {"max_steps", before.value("max_steps", json())}}}};
      fmt::print("resume: the run length changes from epochs {} max_steps {} to epochs {} max_steps {} (recorded in metrics.jsonl)\n",
                 before.value("epochs", json()).dump(), before.value("max_steps", json()).dump(), config["epochs"].dump(),
                 config["max_steps"].dump());
    }
  }
  std::unique_ptr<distributed::GradSync> grad_sync;
  if (comm) {
    std::vector<torch::Tensor> ps;
    for (auto& p : net->parameters()) ps.push_back(p.detach());
    comm->broadcast(ps, 0);  // every rank starts from rank 0's weights
    grad_sync = std::make_unique<distributed::GradSync>(*comm, net->parameters());
  }
  const loader::LoaderOptions lo = loader_options(o, data, device, world);
  TrainResult result;
  const std::unique_ptr<loader::BatchSource> train_source = make_train_source(o, data, lo, device, lead, result);
  loader::BatchSource& train_loader = *train_source;
  Validator validator(o, data, lo, device, world, comm.get());
  TrainStep step(*net, *opt, build_loss(loss), amp_settings(o), grad_sync.get(), o.clip_grad_norm);

  const std::int64_t per_epoch = train_loader.batches_per_epoch();
  const std::int64_t total_steps = length.total_steps(per_epoch);
  // The schedule runs over the run's epochs (with --max-steps alone, as many as its steps take).
  const Schedule schedule = schedule_for(o, length.epochs ? *length.epochs : (total_steps + per_epoch - 1) / per_epoch);
  config["schedule_epochs"] = schedule.epochs;
  std::optional<RunLog> metrics;  // metrics.jsonl, TensorBoard, MLflow
  if (lead) {
    io::write_file_atomic(o.out / "config.json", config.dump(2) + "\n");
    metrics.emplace(o.out, files.resume(), pos.step, mlflow_settings_of(o), config);
    if (!length_change.is_null()) metrics->write(length_change);
    if (!o.quiet)
      for (const std::string& w : metrics->where()) fmt::print(stderr, "train: {}\n", w);
  }
  const std::int64_t first_step = pos.step;
  // This invocation's steps (a resumed run's earlier ones are reported apart, at the end).
  Progress progress("train", static_cast<std::uint64_t>(std::max<std::int64_t>(0, total_steps - first_step)), "steps", o.quiet || !lead);
  Meter meter;
  bool done = pos.step >= total_steps;
  auto end_of_epoch = [&](std::int64_t epoch) {
    files.save_last(*net);
    if (!((epoch + 1) % o.val_every == 0 || length.epoch_limit_reached(epoch + 1) || done) || !validator.enabled()) return;
    const model::DiceSummary d = validator.run(*net, epoch);
    // nnU-Net's pseudo-Dice picks its best checkpoint by the moving average of the mean (nnUNetTrainer.on_epoch_end).
    const bool pseudo = data.nnunet.has_value();
    if (pseudo) pos.ema = std::isnan(pos.ema) ? d.mean : 0.9 * pos.ema + 0.1 * d.mean;
    const double score = pseudo ? pos.ema : d.mean;
    if (metrics) {
      json line{{"type", "val"}, {"epoch", epoch}, {"step", pos.step}, {"dice_tc", d.per_channel[0]}, {"dice_wt", d.per_channel[1]},
                {"dice_et", d.per_channel[2]}, {"dice_mean", d.mean}, {"val_samples", data.split.val.size()}};
      if (pseudo) line["ema_fg_dice"] = pos.ema;
      metrics->write(line);
    }
    if (score > pos.best) {
      pos.best = score;
      pos.best_per_class = {d.per_channel[0], d.per_channel[1], d.per_channel[2]};
      files.save_best(*net);
    }
    progress.set_status(fmt::format("val dice {:.3f}", d.mean));
  };

  for (std::int64_t epoch = pos.epoch; !length.epoch_limit_reached(epoch) && !done; ++epoch) {
    train_loader.start_epoch(epoch, epoch == pos.epoch ? pos.batch : 0);
    const double lr = scheduled_lr(schedule, o.lr, epoch);
    set_lr(*opt, lr);
    net->train();
    auto t_prev = Clock::now();
    double wait_prev = 0;
    while (auto b = train_loader.next()) {
      if (b->keys.empty()) continue;
      check_fits(b->keys, {b->image.size(2), b->image.size(3), b->image.size(4)}, net->divisors(), data.roi);
      torch::Tensor x = b->image.to(device, /*non_blocking=*/true), y = b->label.to(device, true);
      if (o.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast3d);
      // The model's own draws (SegResNet's dropout) come from torch's global generator, seeded per step and rank
      // from the run's seed: a resumed run draws what an uninterrupted one would (checkpoints hold no RNG state).
      torch::manual_seed(step_seed(o.seed, pos.step, world.rank));
      const TrainStep::Outcome out = step.run(x, y, pos);
      ++pos.step;
      pos.epoch = epoch;
      pos.batch = b->index + 1;
      double loss_v = out.loss.item<double>();
      int stop = stop_requested();
      if (comm) {  // the logged loss is the mean over ranks (the global batch); a stop asked of any rank stops all here
        torch::Tensor l = torch::tensor({loss_v, static_cast<double>(stop)}, torch::kFloat64);
        comm->allreduce_sum(l);
        loss_v = l[0].item<double>() / world.size;
        if (stop == 0 && l[1].item<double>() > 0) stop = SIGTERM;
      }
      const auto now = Clock::now();
      const double dt = std::chrono::duration<double>(now - t_prev).count();
      const double wait = train_loader.wait_seconds() - wait_prev;
      t_prev = now;
      wait_prev = train_loader.wait_seconds();
      meter.seconds += dt;
      meter.wait += wait;
      meter.comm += out.comm_seconds;
      meter.samples += static_cast<std::int64_t>(b->keys.size());
      result.last_loss = loss_v;
      if (metrics)
        metrics->write({{"type", "step"}, {"epoch", epoch}, {"step", pos.step}, {"loss", loss_v}, {"lr", lr},
                        {"samples_per_s", static_cast<double>(b->keys.size() * world.size) / dt}, {"data_wait", dt > 0 ? wait / dt : 0.0},
                        {"comm_wait", dt > 0 ? out.comm_seconds / dt : 0.0}});
      progress.set_status(fmt::format("loss {:.4f}", loss_v));
      progress.advance();
      if (!std::isfinite(loss_v)) throw Error(fmt::format("loss became {} at step {} (learning rate too high?)", loss_v, pos.step));
      if (pos.step >= total_steps || stop) {
        done = true;
        result.stopped_by_signal = pos.step >= total_steps ? 0 : stop;
        break;
      }
      if (o.checkpoint_every > 0 && pos.step % o.checkpoint_every == 0) files.save_checkpoint(*net, *opt, pos, config);
    }
    if (result.stopped_by_signal) {
      // Asked to stop: save and leave at once (validation could eat the grace period). The position stays in
      // this epoch, so the resumed run finishes it, end-of-epoch validation included, as an uninterrupted one.
      files.save_last(*net);
      files.save_checkpoint(*net, *opt, pos, config);
      break;
    }
    if (pos.batch >= per_epoch) {  // the epoch is complete: resume at the next one
      pos.epoch = epoch + 1;
      pos.batch = 0;
    }
    end_of_epoch(epoch);  // also when --max-steps stopped the run mid-epoch: validate and save
    files.save_checkpoint(*net, *opt, pos, config);
  }
  if (lead) {
    progress.finish();
    if (first_step > 0) fmt::print(stderr, "train: run total {} steps (resumed at step {})\n", pos.step, first_step);
  }
  if (data.nnunet && o.final_val && done && !result.stopped_by_signal && !data.split.val.empty()) {
    const fs::path summary = o.out / "validation_summary.json";
    const FinalValidation f = nnunet_final_validation(*net, data, device, world, comm.get(), summary);
    if (metrics)
      metrics->write({{"type", "final_val"}, {"step", pos.step}, {"dice_tc", f.mean_dice[0]}, {"dice_wt", f.mean_dice[1]}, {"dice_et", f.mean_dice[2]},
                      {"dice_mean", f.foreground_mean}, {"cases", f.cases}});
    if (lead)
      fmt::print("final validation (nnU-Net's, {} whole): Dice mean {:.4f} (TC {:.4f}, WT {:.4f}, ET {:.4f}) -> {}\n", plural(f.cases, "case"),
                 f.foreground_mean, f.mean_dice[0], f.mean_dice[1], f.mean_dice[2], summary.string());
  }
  result.step_seconds = progress.elapsed_seconds();
  result.steps = pos.step - first_step;
  result.total_steps = pos.step;
  result.weights = o.out / (pos.best >= 0 ? "model.pt" : "last.pt");
  result.best_dice = pos.best;
  if (data.nnunet) result.best_what = "best pseudo-Dice EMA (nnU-Net's pick for checkpoint_best; per region at that validation)";
  result.best_per_class = pos.best_per_class;
  result.samples_per_s = meter.seconds > 0 ? static_cast<double>(meter.samples) / meter.seconds : 0;
  result.data_wait_fraction = meter.seconds > 0 ? meter.wait / meter.seconds : 0;
  result.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  result.comm_wait_fraction = meter.seconds > 0 ? meter.comm / meter.seconds : 0;
  result.rank = world.rank;
  result.world = world.size;
  result.checkpoint = files.checkpoint();
  if (metrics) {
    result.tracking = {metrics->where().front()};  // TensorBoard's file; MLflow's line (its run's address) comes from finish
    const fs::path plot = fs::temp_directory_path() / fmt::format("segscale-curves-{}.png", ::getpid());
    std::vector<std::pair<std::string, fs::path>> artifacts = {
        {"config.json", o.out / "config.json"}, {"metrics.jsonl", o.out / "metrics.jsonl"}, {result.weights.filename().string(), result.weights}};
    try {
      plot_metrics(o.out / "metrics.jsonl", plot);
      artifacts.emplace_back("curves.png", plot);  // as `segscale plot` names it
    } catch (const Error&) {
      // no step logged yet: no plot
    }
    for (const std::string& line : metrics->finish(result.stopped_by_signal ? "KILLED" : "FINISHED", artifacts)) result.tracking.push_back(line);
    fs::remove(plot);
  }
  if (comm) comm->barrier();  // nobody leaves while rank 0 still writes
  return result;
}

}  // namespace segscale::train
