// segscale bench: the case study's table of epoch times, measured on this machine. It runs segscale itself
// (synth, prep, train, launch) as subprocesses and reads their metrics, so every figure is a real run.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "io/file.h"
#include "util/error.h"
#include "util/plural.h"

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

// Runs a command, returns (exit code, stdout); stderr goes to `log`.
std::pair<int, std::string> sh(const std::string& cmd, const fs::path& log) {
  std::string full = cmd + " 2>>" + quote(log.string());
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) throw Error("bench: cannot run " + cmd);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : 1, out};
}

void must(const std::string& cmd, const fs::path& log) {
  auto [rc, out] = sh(cmd, log);
  if (rc != 0) throw Error(fmt::format("bench: step failed (exit {}): {}; see {}", rc, cmd, log.string()));
}

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

// The MONAI peer: the case study's chain and model in Python, measured the same way (when MONAI is importable).
const char* kMonaiPeer = R"PY(
import json, sys, time, glob, os
import torch
from monai.transforms import (Compose, LoadImaged, EnsureChannelFirstd, Spacingd, Orientationd, RandSpatialCropd, RandFlipd,
                              NormalizeIntensityd, RandScaleIntensityd, RandShiftIntensityd, MapTransform)
from monai.networks.nets import UNet
from monai.losses import DiceLoss
torch.set_num_threads(int(sys.argv[2])); steps = int(sys.argv[3])
class Lab(MapTransform):
    def __call__(self, d):
        d = dict(d); l = d["label"]
        d["label"] = torch.stack([(l == 2) | (l == 3), (l == 1) | (l == 2) | (l == 3), l == 2], 0).float(); return d
chain = Compose([LoadImaged(keys=["image", "label"], image_only=True), EnsureChannelFirstd(keys="image"), Lab(keys="label"),
    Spacingd(keys=["image", "label"], pixdim=(1.5, 1.5, 2.0), mode=("bilinear", "nearest")), Orientationd(keys=["image", "label"], axcodes="RAS"),
    RandSpatialCropd(keys=["image", "label"], roi_size=[128, 128, 64], random_size=False), RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=0),
    NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True), RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
    RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5)])
ds = sys.argv[1]
pairs = [{"image": f, "label": f.replace("imagesTr", "labelsTr")} for f in sorted(glob.glob(os.path.join(ds, "imagesTr", "*.nii.gz")))]
net = UNet(spatial_dims=3, in_channels=4, out_channels=3, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)
loss_fn = DiceLoss(sigmoid=True, squared_pred=True); opt = torch.optim.Adam(net.parameters(), 1e-4)
def step(x, y):
    opt.zero_grad(); loss_fn(net(x), y).backward(); opt.step()
raw, comp, chain_t = [], [], []
for i in range(steps):
    t0 = time.perf_counter(); b = [chain(pairs[(2 * i + k) % len(pairs)]) for k in range(2)]; t1 = time.perf_counter()
    x = torch.stack([s["image"].as_tensor() for s in b]); y = torch.stack([s["label"].as_tensor() for s in b])
    step(x, y); t2 = time.perf_counter(); raw.append(2 / (t2 - t0)); comp.append(2 / (t2 - t1)); chain_t.append((t1 - t0) / 2)
med = lambda v: sorted(v[1:])[len(v[1:]) // 2]
print(json.dumps({"raw_samples_per_s": med(raw), "compute_samples_per_s": med(comp), "chain_s_per_pair": med(chain_t)}))
)PY";

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
  auto repeat = std::make_shared<int>(3);
  cmd->add_flag("--quick", *quick, "About 3 minutes on 2 cores: 4 small cases, 4 steps per row, each row measured --repeat times");
  cmd->add_option("--repeat", *repeat, "Measure every training row and the MONAI peer this many times; report the median and range")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--json", *json_out, "Also write the figures as JSON here");
  cmd->add_option("--work", *work, "Working folder (default: a temporary one, removed afterwards)");
  cmd->add_option("--ranks", *ranks, "Ranks for the data-parallel row")->capture_default_str();
  cmd->add_option("--steps", *steps, "Training steps per row (default 4 quick, 12 otherwise)");
  cmd->add_option("--cases", *cases, "Synthetic cases (default 4 quick, 8 otherwise)");
  cmd->add_flag("--no-monai", *no_monai, "Skip the MONAI (Python) peer column");
  cmd->add_option("--device", *device, "Where the training rows run")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  cmd->callback([=] {
    const std::string exe = quote(self_exe());
    const int n_steps = *steps > 0 ? *steps : (*quick ? 4 : 12);
    const int n_cases = *cases > 0 ? *cases : (*quick ? 4 : 8);
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const bool temp = work->empty();
    fs::path w = temp ? fs::temp_directory_path() / fmt::format("segscale-bench-{}", ::getpid()) : fs::path(*work);
    fs::create_directories(w);
    const fs::path log = w / "bench.log";
    auto secs = [](auto t0) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    fmt::print("bench: {} synthetic cases of 200x200x140 (4 modalities) -> 128x128x64 training crops, {} steps per row, {} cores\n", n_cases,
               n_steps, cores);
    must(fmt::format("{} synth --out {} --cases {} --shape 200,200,140 --quiet", exe, quote((w / "ds").string()), n_cases), log);
    auto t0 = std::chrono::steady_clock::now();
    const int copies = *quick ? 4 : 20;
    must(fmt::format("{} prep --data {} --out {} --copies {} --quiet", exe, quote((w / "ds").string()), quote((w / "copies").string()), copies), log);
    const double t_copies = secs(t0);
    t0 = std::chrono::steady_clock::now();
    must(fmt::format("{} prep --data {} --out {} --cache --quiet", exe, quote((w / "ds").string()), quote((w / "cache").string())), log);
    const double t_cache = secs(t0);
    const std::string train =
        fmt::format("train --batch 2 --max-steps {} --epochs 100000 --val-fraction 0 --loader-threads 2 --quiet --device {}", n_steps, *device);
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
        {"(a) raw NIfTI, transforms on the fly", "raw",
         fmt::format("{} {} --data {} --out {} --threads {}", exe, train, quote((w / "ds").string()), quote((w / "run-raw").string()), cores), 31000,
         "31,000 s (1 x V100, on-the-fly CPU transforms)"},
        {"(b) --copies store", "copies",
         fmt::format("{} {} --store {} --out {} --threads {}", exe, train, quote((w / "copies").string()), quote((w / "run-copies").string()), cores),
         0, "-"},
        {"(c) --cache store, online augmentation", "cache",
         fmt::format("{} {} --store {} --out {} --threads {}", exe, train, quote((w / "cache").string()), quote((w / "run-cache").string()), cores),
         0, "-"},
        {fmt::format("(d) {} ranks x {} threads, --cache store", *ranks, std::max(1, cores / *ranks)), "ranks",
         fmt::format("{} launch --nproc-per-node {} --master-port {} -- {} {} --store {} --out {} --threads {}", exe, *ranks, 29000 + ::getpid() % 1000,
                     exe, train, quote((w / "cache").string()), quote((w / "run-ranks").string()), std::max(1, cores / *ranks)),
         2400, "2,400 s (8 x V100) / 1,300 s (16 x V100), .pt crops on FSx"},
        // The same --cache store resident on the training device, batches built there (compare with (c)).
        {"(e) --cache store, --device-cache", "devcache",
         fmt::format("{} {} --store {} --out {} --threads {} --device-cache", exe, train, quote((w / "cache").string()),
                     quote((w / "run-devcache").string()), cores),
         0, "-"},
        {"(f) --device-cache, --amp (bf16 autocast)", "devcache-amp",
         fmt::format("{} {} --store {} --out {} --threads {} --device-cache --amp", exe, train, quote((w / "cache").string()),
                     quote((w / "run-devcache-amp").string()), cores),
         0, "-"},
    };
    // Repeats interleave the rows (a, b, c, d, MONAI, a, b, ...), so a slow spell of the machine spreads over all.
    std::vector<json> monai_runs;
    for (int rep = 0; rep < *repeat; ++rep) {
      for (auto& row : rows) {
        const fs::path run = w / ("run-" + row.key);
        fs::remove_all(run);
        must(row.cmd + " >/dev/null", log);
        row.r.push_back(read_rate(run / "metrics.jsonl"));
      }
      if (!*no_monai) {
        fs::path py = w / "monai_peer.py";
        io::write_file_atomic(py, std::string(kMonaiPeer));
        auto [rc, out] = sh(fmt::format("/usr/bin/python3 {} {} {} {}", quote(py.string()), quote((w / "ds").string()), cores, std::max(3, n_steps / 2)), log);
        json m = rc == 0 ? json::parse(out, nullptr, false) : json();
        if (m.is_object()) monai_runs.push_back(m);
      }
    }
    json monai;
    Spread m_raw, m_step, ratio_raw, ratio_copies;
    if (!monai_runs.empty()) {
      std::vector<double> raw, step, r_raw, r_copies;
      for (std::size_t i = 0; i < monai_runs.size(); ++i) {
        raw.push_back(monai_runs[i]["raw_samples_per_s"].get<double>());
        step.push_back(monai_runs[i]["compute_samples_per_s"].get<double>());
        if (i < rows[0].r.size()) r_raw.push_back(rows[0].r[i].samples_per_s / raw.back());  // same repeat, same machine state
        if (i < rows[1].r.size()) r_copies.push_back(rows[1].r[i].samples_per_s / step.back());
      }
      m_raw = spread(raw), m_step = spread(step), ratio_raw = spread(r_raw), ratio_copies = spread(r_copies);
      std::vector<double> chain;
      for (const auto& m : monai_runs) chain.push_back(m["chain_s_per_pair"].get<double>());
      monai = {{"runs", monai_runs}, {"raw_samples_per_s", m_raw.median}, {"compute_samples_per_s", m_step.median},
               {"chain_s_per_pair", spread(chain).median}, {"raw_ratio", {ratio_raw.median, ratio_raw.lo, ratio_raw.hi}},
               {"copies_ratio", {ratio_copies.median, ratio_copies.lo, ratio_copies.hi}}};
    }
    const double epoch = 48400;
    fmt::print("\nmedian (min-max) of {}:\n", plural(*repeat, "run"));
    fmt::print("{:<46} {:>22} {:>9} {:>14} {:>22}   {}\n", "configuration (this machine)", "samples/s", "data wait", "epoch (48,400)",
               "MONAI peer", "case study epoch");
    json jrows = json::array();
    for (const auto& row : rows) {
      std::string peer = "-";
      if (!monai.is_null()) {
        if (row.key == "raw") peer = show(m_raw, "{:.3f}") + "/s";
        if (row.key == "copies") peer = show(m_step, "{:.3f}") + "/s";
      }
      const Spread rate = row.rate();
      std::vector<double> all;
      for (const auto& x : row.r) all.push_back(x.samples_per_s);
      fmt::print("{:<46} {:>22} {:>8.1f}% {:>12.0f} s {:>22}   {}\n", row.name, show(rate, "{:.3f}"), 100 * row.wait().median, epoch / rate.median,
                 peer, row.case_study);
      jrows.push_back({{"row", row.key}, {"name", row.name}, {"samples_per_s", rate.median}, {"samples_per_s_runs", all},
                       {"samples_per_s_range", {rate.lo, rate.hi}}, {"data_wait", row.wait().median}, {"epoch_s_48400", epoch / rate.median},
                       {"case_study", row.case_study}});
    }
    fmt::print("\npreprocessing: --copies {}: {:.2f} cases/s, {:.1f} samples/s; --cache: {:.2f} cases/s (case study: 48,400 samples in 27 min on 720 vCPUs)\n",
               copies, n_cases / t_copies, n_cases * copies / t_copies, n_cases / t_cache);
    if (!monai.is_null()) {
      fmt::print("MONAI peer (Python, same machine, same runs): raw chain + step {}/s, step only {}/s, chain {:.2f} s per pair\n",
                 show(m_raw, "{:.3f}"), show(m_step, "{:.3f}"), monai["chain_s_per_pair"].get<double>());
      fmt::print("segscale / MONAI, each ratio within one repeat: (a) raw NIfTI {}x, (b) --copies store vs MONAI's step alone {}x\n",
                 show(ratio_raw, "{:.2f}"), show(ratio_copies, "{:.2f}"));
    }
    else
      fmt::print("MONAI peer: not measured (MONAI not importable by /usr/bin/python3, or --no-monai)\n");
    fmt::print("epoch = 48,400 samples / measured samples/s on this machine's CPU; the case study's epochs ran on V100 GPUs.\n");
    if (!json_out->empty()) {
      json j{{"machine_cores", cores}, {"cases", n_cases}, {"steps", n_steps}, {"repeat", *repeat}, {"rows", jrows},
             {"prep", {{"copies", copies}, {"copies_seconds", t_copies}, {"cache_seconds", t_cache}, {"cases", n_cases}}}, {"monai", monai}};
      io::write_file_atomic(*json_out, j.dump(2) + "\n");
    }
    if (temp) fs::remove_all(w);
  });
}

}  // namespace segscale::cli
