// segscale bench: the case study's table of epoch times, measured on this machine. It runs segscale itself
// (synth, prep, train, launch) as subprocesses and reads their metrics, so every figure is a real run.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>
#include <utility>

#include "cli/commands.h"
#include "io/file.h"
#include "transforms/pipeline.h"
#include "util/error.h"
#include "util/plural.h"
#include "util/stop_signal.h"

namespace segscale::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw Error("bench: cannot find the segscale binary (/proc/self/exe)");
  buf[n] = 0;
  return buf;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

std::string hms(double s) {
  const long t = std::lround(std::max(0.0, s));
  return t >= 3600 ? fmt::format("{}h{:02d}m", t / 3600, t / 60 % 60) : t >= 60 ? fmt::format("{}m{:02d}s", t / 60, t % 60) : fmt::format("{}s", t);
}

// Progress on stderr: what runs now, time since the start, and an estimate of the time left once a training
// step has been timed. A terminal gets one redrawn line; a log gets a line whenever the text changes.
class Status {
 public:
  Status() : tty_(::isatty(2) != 0), t0_(std::chrono::steady_clock::now()) {}
  ~Status() { end_line(); }
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  // The measured part: `total` units (training steps and MONAI steps), timed from the first call of start_units.
  void start_units(int total) {
    total_units_ = total;
    t_units_ = std::chrono::steady_clock::now();
  }
  void units_done(int n) { done_units_ = n; }
  void show(const std::string& what) {
    std::string eta = "ETA after the first measured step";
    if (done_units_ > 0) {
      const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_units_).count();
      eta = "ETA " + hms(spent / done_units_ * (total_units_ - done_units_));
    } else if (total_units_ == 0) {
      eta = "ETA after the first measured step";
    }
    const std::string text = fmt::format("bench: {}, elapsed {}, {}", what, hms(elapsed()), eta);
    if (tty_) {
      fmt::print(stderr, "\r\033[K{}", text);
      open_line_ = true;
    } else if (what != last_) {
      fmt::print(stderr, "{}\n", text);
    }
    last_ = what;
    std::fflush(stderr);
  }
  void end_line() {
    if (open_line_) fmt::print(stderr, "\n");
    open_line_ = false;
  }

 private:
  bool tty_, open_line_ = false;
  std::chrono::steady_clock::time_point t0_, t_units_;
  int total_units_ = 0, done_units_ = 0;
  std::string last_;
};

// Runs `cmd` under /bin/sh in a process group of its own, returns (exit code, stdout); stderr is appended to `log`.
// `tick` is called about twice a second while it runs. A stop request (SIGINT/SIGTERM to bench, or Ctrl-C at
// the terminal, which reaches only bench's group) kills the child's whole group (a launch and its ranks),
// waits for it and throws Stopped.
std::pair<int, std::string> sh(const std::string& cmd, const fs::path& log, const std::function<void()>& tick = {}) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(fmt::format("bench: cannot create a pipe: {}", std::strerror(errno)));
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(fmt::format("bench: cannot start {}: {}", cmd, std::strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);
    const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fds[1], 1);
    if (err >= 0) ::dup2(err, 2);
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: no window in which a signal to the group misses the child
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  bool killed = false;
  for (;;) {
    if (stop_requested() && !killed) {
      ::kill(-pid, SIGKILL);  // the work is thrown away with the folder: nothing to save
      killed = true;
    }
    pollfd pf{fds[0], POLLIN, 0};
    const int r = ::poll(&pf, 1, 500);
    if (r < 0 && errno != EINTR) break;
    if (r > 0) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n > 0) out.append(buf, static_cast<std::size_t>(n));
      else if (n == 0 || errno != EINTR) break;  // end of output: the child (and its group) closed stdout
    }
    if (tick && !killed) tick();
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    if (stop_requested() && !killed) ::kill(-pid, SIGKILL), killed = true;
  }
  if (stop_requested()) {
    ::kill(-pid, SIGKILL);  // grandchildren that outlived the shell
    throw Stopped("bench interrupted");
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0), out};
}

// Runs `cmd`; a non-zero exit is an Error naming `shown`, where the log will be once bench has ended.
void must(const std::string& cmd, const fs::path& log, const fs::path& shown, const std::function<void()>& tick = {}) {
  auto [rc, out] = sh(cmd, log, tick);
  if (rc != 0) throw Error(fmt::format("bench: step failed (exit {}): {}; see {}", rc, cmd, shown.string()));
}

// Training steps recorded so far in a run's metrics.jsonl (0 while it does not exist).
int steps_recorded(const fs::path& metrics) {
  std::ifstream in(metrics);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.find("\"type\":\"step\"") != std::string::npos) ++n;
  return n;
}

// The default work folder is bench's own: removed when bench ends, however it ends (success, failure, or a stop
// by SIGINT/SIGTERM). A failure's log is kept beside it, since the error names it.
class WorkFolder {
 public:
  WorkFolder(fs::path dir, bool temporary) : dir_(std::move(dir)), temporary_(temporary) { fs::create_directories(dir_); }
  ~WorkFolder() {
    if (!temporary_) return;
    std::error_code ec;
    if (keep_log_) fs::copy_file(dir_ / "bench.log", kept_log(), fs::copy_options::overwrite_existing, ec);
    fs::remove_all(dir_, ec);
  }
  const fs::path& dir() const { return dir_; }
  // Where the log is to be found after bench ends (kept there by the destructor on failure).
  fs::path log_for_messages() const { return temporary_ ? kept_log() : dir_ / "bench.log"; }
  void keep_log() { keep_log_ = true; }

 private:
  fs::path kept_log() const { return dir_.parent_path() / (dir_.filename().string() + ".log"); }
  fs::path dir_;
  bool temporary_, keep_log_ = false;
};

struct Rate {
  double samples_per_s = 0, data_wait = 0, comm_wait = 0;
};

Rate read_rate(const fs::path& metrics) {
  std::ifstream in(metrics);
  std::string line;
  std::vector<double> rates;
  double wait = 0, comm = 0;
  int n = 0, k = 0;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("type", "") != "step") continue;
    if (k++ == 0) continue;  // the first step warms up
    rates.push_back(j.value("samples_per_s", 0.0));
    wait += j.value("data_wait", 0.0);
    comm += j.value("comm_wait", 0.0);
    ++n;
  }
  if (rates.empty()) throw Error("bench: no training steps recorded in " + metrics.string());
  std::sort(rates.begin(), rates.end());
  return {rates[rates.size() / 2], wait / n, comm / n};
}

// The MONAI peer: the case study's chain and model (or the monai-brats recipe's SegResNet on the same crop) in
// Python, measured the same way (when MONAI is importable).
const char* kMonaiPeer = R"PY(
import json, sys, time, glob, os
import torch
from monai.transforms import (Compose, LoadImaged, EnsureChannelFirstd, Spacingd, Orientationd, RandSpatialCropd, RandFlipd,
                              NormalizeIntensityd, RandScaleIntensityd, RandShiftIntensityd, MapTransform)
from monai.networks.nets import UNet, SegResNet
from monai.losses import DiceLoss
torch.set_num_threads(int(sys.argv[2])); steps = int(sys.argv[3]); model = sys.argv[4]; roi = [int(v) for v in sys.argv[5].split(",")]
class Lab(MapTransform):
    def __call__(self, d):
        d = dict(d); l = d["label"]
        d["label"] = torch.stack([(l == 2) | (l == 3), (l == 1) | (l == 2) | (l == 3), l == 2], 0).float(); return d
chain = Compose([LoadImaged(keys=["image", "label"], image_only=True), EnsureChannelFirstd(keys="image"), Lab(keys="label"),
    Spacingd(keys=["image", "label"], pixdim=(1.5, 1.5, 2.0), mode=("bilinear", "nearest")), Orientationd(keys=["image", "label"], axcodes="RAS"),
    RandSpatialCropd(keys=["image", "label"], roi_size=roi, random_size=False), RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=0),
    NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True), RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
    RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5)])
ds = sys.argv[1]
pairs = [{"image": f, "label": f.replace("imagesTr", "labelsTr")} for f in sorted(glob.glob(os.path.join(ds, "imagesTr", "*.nii.gz")))]
if model == "segresnet":  # the monai-brats recipe (MONAI's BraTS tutorial): SegResNet, its DiceLoss, Adam wd 1e-5, batch 1
    net = SegResNet(blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1), init_filters=16, in_channels=4, out_channels=3, dropout_prob=0.2)
    loss_fn = DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True, to_onehot_y=False, sigmoid=True)
    opt = torch.optim.Adam(net.parameters(), 1e-4, weight_decay=1e-5); batch = 1
else:  # the case study: UNet, DiceLoss, Adam, batch 2
    net = UNet(spatial_dims=3, in_channels=4, out_channels=3, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)
    loss_fn = DiceLoss(sigmoid=True, squared_pred=True); opt = torch.optim.Adam(net.parameters(), 1e-4); batch = 2
def step(x, y):
    opt.zero_grad(); loss_fn(net(x), y).backward(); opt.step()
raw, comp, chain_t = [], [], []
for i in range(steps):
    t0 = time.perf_counter(); b = [chain(pairs[(batch * i + k) % len(pairs)]) for k in range(batch)]; t1 = time.perf_counter()
    x = torch.stack([s["image"].as_tensor() for s in b]); y = torch.stack([s["label"].as_tensor() for s in b])
    step(x, y); t2 = time.perf_counter(); raw.append(batch / (t2 - t0)); comp.append(batch / (t2 - t1)); chain_t.append((t1 - t0) / batch)
med = lambda v: sorted(v[1:])[len(v[1:]) // 2]
print(json.dumps({"raw_samples_per_s": med(raw), "compute_samples_per_s": med(comp), "chain_s_per_pair": med(chain_t)}))
)PY";

// Refuses what cannot give a table, before anything runs: too few steps, no case, no rank, a case the models
// cannot take after the case study's resampling and crop (the UNet halves 4 times, SegResNet 3 times).
void check_bench_settings(int steps, int cases, int ranks, const std::string& shape, const transforms::Pipeline& chain) {
  if (steps < 2) throw UsageError(fmt::format("--steps {}: at least 2 (the first step of each row warms up and is not measured)", steps));
  if (cases < 1) throw UsageError(fmt::format("--cases {}: at least 1", cases));
  if (ranks < 1) throw UsageError(fmt::format("--ranks {}: at least 1", ranks));
  transforms::Shape3 size{};
  int n = 0;
  std::size_t at = 0;
  for (; n < 3 && at <= shape.size(); ++n) {
    const std::size_t comma = std::min(shape.find(',', at), shape.size());
    try {
      std::size_t used = 0;
      size[n] = std::stoll(shape.substr(at, comma - at), &used);
      if (used != comma - at || size[n] < 1) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw UsageError(fmt::format("--shape {}: three positive whole numbers X,Y,Z", shape));
    }
    at = comma + 1;
  }
  if (n != 3 || at <= shape.size()) throw UsageError(fmt::format("--shape {}: three positive whole numbers X,Y,Z", shape));
  const transforms::Shape3 crop = *chain.crop_roi();
  const Affine one_mm;  // synth writes 1 mm voxels
  const transforms::Shape3 s = transforms::output_size(chain, size, one_mm);
  for (int a = 0; a < 3; ++a)
    if (s[a] % 16 != 0)
      throw UsageError(fmt::format("--shape {}: a case is {}x{}x{} after the case study's resampling to 1.5x1.5x2 mm and its {}x{}x{} crop, which "
                                   "the UNet cannot take (each axis a multiple of 16): give a shape at least {}x{}x{}",
                                   shape, s[0], s[1], s[2], crop[0], crop[1], crop[2], static_cast<int>(std::ceil(crop[0] * 1.5)),
                                   static_cast<int>(std::ceil(crop[1] * 1.5)), crop[2] * 2));
}

// Median and range of repeated measurements: single runs on a shared machine are noise.
struct Spread {
  double median = 0, lo = 0, hi = 0;
};

Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return {};
  const std::size_t n = v.size();
  const double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return {med, v.front(), v.back()};
}

std::string show(const Spread& s, const char* fmt_one) {
  if (s.lo == s.hi) return fmt::format(fmt::runtime(fmt_one), s.median);
  return fmt::format("{} ({}-{})", fmt::format(fmt::runtime(fmt_one), s.median), fmt::format(fmt::runtime(fmt_one), s.lo),
                     fmt::format(fmt::runtime(fmt_one), s.hi));
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Reproduce the case study's table of epoch times on this machine, measured");
  auto quick = std::make_shared<bool>(false);
  auto json_out = std::make_shared<std::string>();
  auto work = std::make_shared<std::string>();
  auto ranks = std::make_shared<int>(2);
  auto steps = std::make_shared<int>(0);
  auto cases = std::make_shared<int>(0);
  auto no_monai = std::make_shared<bool>(false);
  auto device = std::make_shared<std::string>("cpu");
  auto repeat = std::make_shared<int>(0);
  auto shape = std::make_shared<std::string>();
  cmd->add_flag("--quick", *quick, "About 40 seconds on 2 cores (35-36 s in three runs, bench/RESULTS.md): a check that every row runs, once, "
                "on 2 small cases, 64x64x32 crops, 3 steps per row (the measured table: plain bench)");
  cmd->add_option("--repeat", *repeat, "Measure every training row and the MONAI peer this many times; report the median and range "
                  "(default 3; 1 with --quick)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--json", *json_out, "Also write the figures as JSON here");
  cmd->add_option("--work", *work, "Working folder, kept (default: $TMPDIR/segscale-bench-PID, removed when bench ends, also on failure or Ctrl-C/SIGTERM; a failure keeps its log as segscale-bench-PID.log)");
  cmd->add_option("--ranks", *ranks, "Ranks for the data-parallel row")->capture_default_str();
  cmd->add_option("--steps", *steps, "Training steps per row, at least 2: the first is warm-up (default 3 quick, 12 otherwise)");
  cmd->add_option("--cases", *cases, "Synthetic cases (default 2 quick, 8 otherwise)");
  cmd->add_option("--shape", *shape, "Size of a synthetic case, X,Y,Z voxels of 1 mm (default 112,112,72 quick, 200,200,140 otherwise; "
                  "the training crop is 128x128x64, 64x64x32 quick, at 1.5x1.5x2 mm)");
  cmd->add_flag("--no-monai", *no_monai, "Skip the MONAI (Python) peer column");
  cmd->add_option("--device", *device, "Where the training rows run")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  cmd->callback([=] {
    const std::string exe = quote(self_exe());
    const int n_steps = cmd->get_option("--steps")->count() ? *steps : (*quick ? 3 : 12);
    const int n_cases = cmd->get_option("--cases")->count() ? *cases : (*quick ? 2 : 8);
    const int n_repeat = *repeat > 0 ? *repeat : (*quick ? 1 : 3);
    if (shape->empty()) *shape = *quick ? "112,112,72" : "200,200,140";
    const transforms::Shape3 crop = *quick ? transforms::Shape3{64, 64, 32} : transforms::Shape3{128, 128, 64};
    // The case study's chain at the bench's crop: checked against the shape, and given to prep and train when not the default.
    transforms::Pipeline bench_chain = transforms::Pipeline::case_study();
    *bench_chain.crop_roi() = crop;
    check_bench_settings(n_steps, n_cases, *ranks, *shape, bench_chain);  // before anything runs
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const bool temp = work->empty();
    const StopSignalScope stop_scope;  // SIGINT/SIGTERM: the running step is killed, the work folder removed
    WorkFolder folder(temp ? fs::temp_directory_path() / fmt::format("segscale-bench-{}", ::getpid()) : fs::path(*work), temp);
    const fs::path& w = folder.dir();
    const fs::path log = w / "bench.log", shown_log = folder.log_for_messages();
    Status status;
    auto secs = [](auto t0) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    auto phase = [&](const std::string& what) {
      status.show(what);
      return [&status, what] { status.show(what); };
    };
    fmt::print("bench: {} synthetic cases of {} (4 modalities) -> {}x{}x{} training crops, {} steps per row, {} cores\n", n_cases,
               *shape, crop[0], crop[1], crop[2], n_steps, cores);
    std::fflush(stdout);
    try {
      must(fmt::format("{} synth --out {} --cases {} --shape {} --quiet", exe, quote((w / "ds").string()), n_cases, quote(*shape)), log, shown_log,
           phase("synth"));
      // The case study's chain, its crop at the bench's size (a file only when it differs from the default chain).
      std::string chain;
      if (crop != transforms::Shape3{128, 128, 64}) {
        io::write_file_atomic(w / "pipeline.json", bench_chain.to_json().dump(2) + "\n");
        chain = " --pipeline " + quote((w / "pipeline.json").string());
      }
      auto t0 = std::chrono::steady_clock::now();
      const int copies = *quick ? 2 : 20;
      must(fmt::format("{} prep --data {} --out {} --copies {}{} --quiet", exe, quote((w / "ds").string()), quote((w / "copies").string()), copies,
                       chain), log, shown_log, phase(fmt::format("prep --copies {}", copies)));
      const double t_copies = secs(t0);
      t0 = std::chrono::steady_clock::now();
      must(fmt::format("{} prep --data {} --out {} --cache{} --quiet", exe, quote((w / "ds").string()), quote((w / "cache").string()), chain), log,
           shown_log, phase("prep --cache"));
      const double t_cache = secs(t0);
      // One training row's command: `model` (the UNet at batch 2, or a recipe) on `source` (--data or --store)
      // into WORK/run-NAME, for the bench's steps without validation.
      const std::string unet = "--batch 2", steps = fmt::format("--max-steps {} --epochs 100000 --val-fraction 0 --loader-threads 2 "
                                                                 "--quiet --device {}", n_steps, *device);
      auto train = [&](const std::string& model, const std::string& source, const fs::path& store, const std::string& name, int threads,
                       const std::string& extra = "") {
        return fmt::format("{} train {} {} {} {} --out {} --threads {}{}", exe, model, steps, source, quote(store.string()),
                           quote((w / ("run-" + name)).string()), threads, extra);
      };
      struct Row {
        std::string name, key;
        std::string cmd;
        double case_study_s;
        std::string case_study;
        std::vector<Rate> r{};  // one per repeat
        Spread rate() const {
          std::vector<double> v;
          for (const auto& x : r) v.push_back(x.samples_per_s);
          return spread(v);
        }
        Spread wait() const {
          std::vector<double> v;
          for (const auto& x : r) v.push_back(x.data_wait);
          return spread(v);
        }
      };
      std::vector<Row> rows = {
          {"(a) raw NIfTI, transforms on the fly", "raw", train(unet, "--data", w / "ds", "raw", cores, chain), 31000,
           "31,000 s (1 x V100, on-the-fly CPU transforms)"},
          {"(b) --copies store", "copies", train(unet, "--store", w / "copies", "copies", cores), 0, "-"},
          {"(c) --cache store, online augmentation", "cache", train(unet, "--store", w / "cache", "cache", cores), 0, "-"},
          {fmt::format("(d) {} ranks x {} threads, --cache store", *ranks, std::max(1, cores / *ranks)), "ranks",
           fmt::format("{} launch --nproc-per-node {} --master-port {} -- {}", exe, *ranks, 29000 + ::getpid() % 1000,
                       train(unet, "--store", w / "cache", "ranks", std::max(1, cores / *ranks))),
           2400, "2,400 s (8 x V100) / 1,300 s (16 x V100), .pt crops on FSx"},
          // The same --cache store resident on the training device, batches built there (compare with (c)).
          {"(e) --cache store, --device-cache", "devcache", train(unet, "--store", w / "cache", "devcache", cores, " --device-cache"), 0, "-"},
          {"(f) --device-cache, --amp (bf16 autocast)", "devcache-amp",
           train(unet, "--store", w / "cache", "devcache-amp", cores, " --device-cache --amp"), 0, "-"},
          // Issue 20: MONAI's BraTS tutorial model at its recipe (batch 1, its loss and optimiser) on the same crop.
          {"(g) SegResNet, monai-brats recipe, --cache store", "segresnet",
           train("--recipe monai-brats --store-chain", "--store", w / "cache", "segresnet", cores), 0, "-"},
      };
      // Repeats interleave the rows (a, b, c, d, MONAI, a, b, ...), so a slow spell of the machine spreads over all.
      std::vector<json> monai_runs, monai_segresnet_runs;
      const int monai_steps = *quick ? 3 : std::max(3, n_steps / 2);
      status.start_units(n_repeat * (static_cast<int>(rows.size()) * n_steps + (*no_monai ? 0 : 2 * monai_steps)));
      int units = 0;
      for (int rep = 0; rep < n_repeat; ++rep) {
        for (auto& row : rows) {
          const fs::path run = w / ("run-" + row.key);
          fs::remove_all(run);
          const std::string what = fmt::format("run {}/{}, row {}", rep + 1, n_repeat, row.name);
          status.show(fmt::format("{}: step 0/{}", what, n_steps));  // at once: a row that dies before the first tick is still named
          must(row.cmd + " >/dev/null", log, shown_log, [&] {
            const int k = std::min(steps_recorded(run / "metrics.jsonl"), n_steps);
            status.units_done(units + k);
            status.show(fmt::format("{}: step {}/{}", what, k, n_steps));
          });
          units += n_steps;
          status.units_done(units);
          row.r.push_back(read_rate(run / "metrics.jsonl"));
        }
        if (!*no_monai) {
          fs::path py = w / "monai_peer.py";
          io::write_file_atomic(py, std::string(kMonaiPeer));
          for (const std::string model : {"unet", "segresnet"}) {
            auto [rc, out] = sh(fmt::format("/usr/bin/python3 {} {} {} {} {} {},{},{}", quote(py.string()), quote((w / "ds").string()), cores,
                                            monai_steps, model, crop[0], crop[1], crop[2]),
                                log, phase(fmt::format("run {}/{}, MONAI peer, {} ({} steps)", rep + 1, n_repeat, model, monai_steps)));
            units += monai_steps;
            status.units_done(units);
            json m = rc == 0 ? json::parse(out, nullptr, false) : json();
            if (m.is_object()) (model == "unet" ? monai_runs : monai_segresnet_runs).push_back(m);
          }
        }
      }
      status.end_line();
      // A MONAI peer's `field` over its runs, and our row's rate over it within each repeat (same machine state).
      auto versus = [](const std::vector<json>& runs, const char* field, const Row& row) {
        std::vector<double> peer, ratio;
        for (std::size_t i = 0; i < runs.size(); ++i) {
          peer.push_back(runs[i][field].get<double>());
          if (i < row.r.size()) ratio.push_back(row.r[i].samples_per_s / peer.back());
        }
        return std::pair{spread(peer), spread(ratio)};
      };
      json monai;
      Spread m_raw, m_step, ratio_raw, ratio_copies;
      if (!monai_runs.empty()) {
        std::tie(m_raw, ratio_raw) = versus(monai_runs, "raw_samples_per_s", rows[0]);
        std::tie(m_step, ratio_copies) = versus(monai_runs, "compute_samples_per_s", rows[1]);
        std::vector<double> chain;
        for (const auto& m : monai_runs) chain.push_back(m["chain_s_per_pair"].get<double>());
        monai = {{"runs", monai_runs}, {"raw_samples_per_s", m_raw.median}, {"compute_samples_per_s", m_step.median},
                 {"chain_s_per_pair", spread(chain).median}, {"raw_ratio", {ratio_raw.median, ratio_raw.lo, ratio_raw.hi}},
                 {"copies_ratio", {ratio_copies.median, ratio_copies.lo, ratio_copies.hi}}};
      }
      // The SegResNet peer against row (g), each ratio within one repeat.
      Spread m_seg, ratio_seg;
      if (!monai_segresnet_runs.empty()) {
        std::tie(m_seg, ratio_seg) = versus(monai_segresnet_runs, "compute_samples_per_s", rows.back());
        if (monai.is_null()) monai = json::object();
        monai["segresnet"] = {{"runs", monai_segresnet_runs}, {"compute_samples_per_s", m_seg.median},
                              {"ratio", {ratio_seg.median, ratio_seg.lo, ratio_seg.hi}}};
      }
      const double epoch = 48400;
      fmt::print("\nmedian (min-max) of {}:\n", plural(n_repeat, "run"));
      fmt::print("{:<48} {:>22} {:>9} {:>14} {:>22}   {}\n", "configuration (this machine)", "samples/s", "data wait", "epoch (48,400)",
                 "MONAI peer", "case study epoch");
      json jrows = json::array();
      for (const auto& row : rows) {
        std::string peer = "-";
        if (!monai.is_null()) {
          if (row.key == "raw" && monai.contains("runs")) peer = show(m_raw, "{:.3f}") + "/s";
          if (row.key == "copies" && monai.contains("runs")) peer = show(m_step, "{:.3f}") + "/s";
          if (row.key == "segresnet" && monai.contains("segresnet")) peer = show(m_seg, "{:.3f}") + "/s";
        }
        const Spread rate = row.rate();
        std::vector<double> all;
        for (const auto& x : row.r) all.push_back(x.samples_per_s);
        fmt::print("{:<48} {:>22} {:>8.1f}% {:>12.0f} s {:>22}   {}\n", row.name, show(rate, "{:.3f}"), 100 * row.wait().median, epoch / rate.median,
                   peer, row.case_study);
        jrows.push_back({{"row", row.key}, {"name", row.name}, {"samples_per_s", rate.median}, {"samples_per_s_runs", all},
                         {"samples_per_s_range", {rate.lo, rate.hi}}, {"data_wait", row.wait().median}, {"epoch_s_48400", epoch / rate.median},
                         {"case_study", row.case_study}});
      }
      fmt::print("\npreprocessing: --copies {}: {:.2f} cases/s, {:.1f} samples/s; --cache: {:.2f} cases/s (case study: 48,400 samples in 27 min on 720 vCPUs)\n",
                 copies, n_cases / t_copies, n_cases * copies / t_copies, n_cases / t_cache);
      if (monai.contains("runs")) {
        fmt::print("MONAI peer (Python, same machine, same runs): raw chain + step {}/s, step only {}/s, chain {:.2f} s per pair\n",
                   show(m_raw, "{:.3f}"), show(m_step, "{:.3f}"), monai["chain_s_per_pair"].get<double>());
        fmt::print("segscale / MONAI, each ratio within one repeat: (a) raw NIfTI {}x, (b) --copies store vs MONAI's step alone {}x\n",
                   show(ratio_raw, "{:.2f}"), show(ratio_copies, "{:.2f}"));
      }
      if (monai.contains("segresnet"))
        fmt::print("segscale / MONAI, SegResNet at the monai-brats recipe (batch 1, same crop): (g) --cache store vs MONAI's step alone {}x\n",
                   show(ratio_seg, "{:.2f}"));
      if (monai.is_null())
        fmt::print("MONAI peer: not measured (MONAI not importable by /usr/bin/python3, or --no-monai)\n");
      fmt::print("epoch = 48,400 samples / measured samples/s on this machine's CPU; the case study's epochs ran on V100 GPUs.\n");
      if (!json_out->empty()) {
        json j{{"machine_cores", cores}, {"cases", n_cases}, {"steps", n_steps}, {"repeat", n_repeat}, {"rows", jrows},
               {"prep", {{"copies", copies}, {"copies_seconds", t_copies}, {"cache_seconds", t_cache}, {"cases", n_cases}}}, {"monai", monai}};
        io::write_file_atomic(*json_out, j.dump(2) + "\n");
      }
    } catch (const Stopped&) {
      status.end_line();
      throw Stopped(fmt::format("bench interrupted by {}; the running step was ended{}", stop_requested() == SIGINT ? "SIGINT (Ctrl-C)" : "a signal",
                                temp ? " and the work folder removed" : fmt::format(", its files are in {}", w.string())));
    } catch (const Error&) {
      status.end_line();
      folder.keep_log();
      throw;
    }
  });
}

}  // namespace segscale::cli
