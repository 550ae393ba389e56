#include "data/synth.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "io/file.h"
#include "io/nifti_image.h"
#include "util/error.h"
#include "util/parallel.h"
#include "util/progress.h"

namespace segscale::data {
namespace fs = std::filesystem;
namespace {

constexpr double kPi = 3.14159265358979323846;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) from a 64-bit hash (53 bits).
double unit(std::uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// A small sequential generator for the per-case parameters.
struct ParamRng {
  std::uint64_t state;
  double uniform(double lo, double hi) { return lo + (hi - lo) * unit(splitmix64(state++)); }
};

enum Tissue : int { kBackground, kWhite, kGrey, kCsf, kEdema, kNecrotic, kEnhancing };

// Mean intensity per tissue for FLAIR, T1, T1ce, T2 (BraTS-like relative contrasts).
constexpr float kContrast[4][7] = {
    {0, 300, 380, 80, 700, 450, 560},    // FLAIR: edema bright, CSF dark
    {0, 600, 450, 150, 380, 250, 420},   // T1
    {0, 620, 470, 160, 400, 260, 1100},  // T1ce: enhancing rim very bright
    {0, 250, 350, 900, 800, 700, 500},   // T2: CSF and edema bright
};

std::uint8_t label_value(int tissue, SynthLayout layout) {
  // MSD and nnU-Net's Dataset137: 1 edema, 2 non-enhancing/necrotic, 3 enhancing. BraTS 2021: 1 NCR, 2 ED, 4 ET.
  const bool brats = layout == SynthLayout::kBrats21;
  switch (tissue) {
    case kEdema: return brats ? 2 : 1;
    case kNecrotic: return brats ? 1 : 2;
    case kEnhancing: return brats ? 4 : 3;
    default: return 0;
  }
}

}  // namespace

Phantom make_phantom(const std::array<std::int64_t, 3>& shape, std::uint64_t seed, int index, SynthLayout layout) {
  const std::int64_t X = shape[0], Y = shape[1], Z = shape[2];
  const std::size_t n = static_cast<std::size_t>(X * Y * Z);
  Phantom p;
  p.shape = shape;
  p.image.assign(4 * n, 0.0f);
  p.label.assign(n, 0);

  const std::uint64_t case_seed = splitmix64(splitmix64(seed) ^ static_cast<std::uint64_t>(index) * 0x632be59bd9b4e019ULL);
  ParamRng rng{case_seed};
  // Brain: an ellipsoid filling most of the field of view, with a bumpy surface.
  const double cx = (X - 1) / 2.0 + rng.uniform(-0.03, 0.03) * X, cy = (Y - 1) / 2.0 + rng.uniform(-0.03, 0.03) * Y,
               cz = (Z - 1) / 2.0;
  const double rx = X * rng.uniform(0.34, 0.40), ry = Y * rng.uniform(0.40, 0.45), rz = Z * rng.uniform(0.36, 0.42);
  const double ph1 = rng.uniform(0, 2 * kPi), ph2 = rng.uniform(0, 2 * kPi);
  // Tumour: centre well inside the brain (normalised coordinates), nested radii.
  const double tu = rng.uniform(-0.45, 0.45), tv = rng.uniform(-0.45, 0.45), tw = rng.uniform(-0.35, 0.35);
  const double re = rng.uniform(0.22, 0.38);   // edema radius, in brain-normalised units
  const double rc = re * rng.uniform(0.45, 0.65);  // core (enhancing rim outer radius)
  const double rn = rc * rng.uniform(0.4, 0.7);    // necrosis
  const double sa = rng.uniform(0.8, 1.25), sb = rng.uniform(0.8, 1.25), sc = rng.uniform(0.8, 1.25);
  const double tph = rng.uniform(0, 2 * kPi);
  const double bias_phase = rng.uniform(0, 2 * kPi);

  for (std::int64_t z = 0; z < Z; ++z)
    for (std::int64_t y = 0; y < Y; ++y)
      for (std::int64_t x = 0; x < X; ++x) {
        const std::size_t i = static_cast<std::size_t>(x + X * (y + Y * z));
        double u = (x - cx) / rx, v = (y - cy) / ry, w = (z - cz) / rz;
        double r = std::sqrt(u * u + v * v + w * w);
        double surface = 1.0 + 0.05 * std::sin(3 * std::atan2(v, u) + ph1) + 0.04 * std::sin(2.5 * w * kPi + ph2);
        if (r >= surface) continue;
        int tissue = r < 0.72 * surface ? kWhite : kGrey;
        // Two ventricles either side of the midline.
        for (double side : {-1.0, 1.0}) {
          double du = (u - side * 0.13) / 0.09, dv = v / 0.32, dw = (w - 0.1) / 0.2;
          if (du * du + dv * dv + dw * dw < 1.0) tissue = kCsf;
        }
        double du = (u - tu) * sa, dv = (v - tv) * sb, dw = (w - tw) * sc;
        double d = std::sqrt(du * du + dv * dv + dw * dw);
        d *= 1.0 + 0.12 * std::sin(4 * std::atan2(dv, du) + tph);
        if (d < rn) tissue = kNecrotic;
        else if (d < rc) tissue = kEnhancing;
        else if (d < re) tissue = kEdema;
        p.label[i] = label_value(tissue, layout);
        double bias = 1.0 + 0.08 * std::sin(2 * kPi * x / X + bias_phase) * std::cos(2 * kPi * y / Y);
        for (int m = 0; m < 4; ++m) {
          std::uint64_t h = splitmix64(case_seed ^ (static_cast<std::uint64_t>(i) * 4 + m) * 0x9e3779b97f4a7c15ULL);
          double noise = (unit(h) + unit(splitmix64(h)) - 1.0) * 0.06;  // triangular, sd ~2.5%
          double val = kContrast[m][tissue] * bias * (1.0 + noise);
          p.image[m * n + i] = static_cast<float>(std::max(1.0, std::round(val)));  // foreground never 0
        }
      }
  return p;
}

std::vector<std::string> synthesize_dataset(const SynthOptions& o) {
  if (o.cases < 1) throw UsageError("--cases must be at least 1");
  for (auto s : o.shape)
    if (s < 4 || s > 2048) throw UsageError("--shape extents must be within 4..2048");
  if (o.layout != "msd" && o.layout != "brats21" && o.layout != "nnunet") throw UsageError("--layout must be msd, brats21 or nnunet");
  if (o.orientation != "RAS" && o.orientation != "LPS") throw UsageError("--orientation must be RAS or LPS");
  const SynthLayout layout = o.layout == "msd" ? SynthLayout::kMsd : o.layout == "nnunet" ? SynthLayout::kNnunet : SynthLayout::kBrats21;
  const bool lps = o.orientation == "LPS";
  const std::int64_t X = o.shape[0], Y = o.shape[1], Z = o.shape[2];

  // World coordinates are the same in both orientations: LPS files store x and y reversed.
  Affine affine = lps ? Affine::diagonal(-1, -1, 1) : Affine::identity();
  if (lps) {
    affine(0, 3) = static_cast<double>(X - 1);
    affine(1, 3) = static_cast<double>(Y - 1);
  }
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) throw error_at(o.out.string(), "cannot create output folder: " + ec.message());

  std::vector<std::string> keys;
  for (int c = 0; c < o.cases; ++c)
    keys.push_back(layout == SynthLayout::kMsd ? fmt::format("BRATS_{:03d}", c + 1) : fmt::format("BraTS2021_{:05d}", c));
  const std::vector<std::string> mods21 = {"flair", "t1", "t1ce", "t2"};

  if (layout != SynthLayout::kBrats21) {
    fs::create_directories(o.out / "imagesTr");
    fs::create_directories(o.out / "labelsTr");
  }
  Progress progress("synth", static_cast<std::uint64_t>(o.cases), "cases", o.quiet);
  parallel_for(keys.size(), o.threads, [&](std::size_t c) {
    Phantom p = make_phantom(o.shape, o.seed, static_cast<int>(c), layout);
    const std::size_t n = p.label.size();
    auto stored = [&](std::size_t i) -> std::size_t {  // disk index -> phantom (RAS) index
      if (!lps) return i;
      std::int64_t x = static_cast<std::int64_t>(i % X), y = static_cast<std::int64_t>((i / X) % Y), z = static_cast<std::int64_t>(i / (X * Y));
      return static_cast<std::size_t>((X - 1 - x) + X * ((Y - 1 - y) + Y * z));
    };
    std::vector<std::uint8_t> label(n);
    for (std::size_t i = 0; i < n; ++i) label[i] = p.label[stored(i)];
    std::uint64_t bytes = 0;
    if (layout == SynthLayout::kMsd) {
      std::vector<float> img(4 * n);
      for (int m = 0; m < 4; ++m)
        for (std::size_t i = 0; i < n; ++i) img[m * n + i] = p.image[m * n + stored(i)];
      auto h = io::make_nifti_header({X, Y, Z, 4}, io::DType::kFloat32, affine);
      io::write_nifti(o.out / "imagesTr" / (keys[c] + ".nii.gz"), h,
                      {reinterpret_cast<const std::uint8_t*>(img.data()), img.size() * sizeof(float)});
      auto lh = io::make_nifti_header({X, Y, Z}, io::DType::kUint8, affine);
      io::write_nifti(o.out / "labelsTr" / (keys[c] + ".nii.gz"), lh, label);
      bytes = img.size() * sizeof(float) + n;
    } else if (layout == SynthLayout::kNnunet) {  // one float32 file per channel, Dataset137's channel order
      auto h = io::make_nifti_header({X, Y, Z}, io::DType::kFloat32, affine);
      std::vector<float> img(n);
      const int phantom_channel[4] = {1, 2, 3, 0};  // T1, T1ce, T2, FLAIR from the phantom's FLAIR, T1, T1ce, T2
      for (int m = 0; m < 4; ++m) {
        for (std::size_t i = 0; i < n; ++i) img[i] = p.image[static_cast<std::size_t>(phantom_channel[m]) * n + stored(i)];
        io::write_nifti(o.out / "imagesTr" / fmt::format("{}_{:04d}.nii.gz", keys[c], m), h,
                        {reinterpret_cast<const std::uint8_t*>(img.data()), n * sizeof(float)});
      }
      auto lh = io::make_nifti_header({X, Y, Z}, io::DType::kUint8, affine);
      io::write_nifti(o.out / "labelsTr" / (keys[c] + ".nii.gz"), lh, label);
      bytes = 4 * n * sizeof(float) + n;
    } else {
      fs::path dir = o.out / keys[c];
      fs::create_directories(dir);
      auto h = io::make_nifti_header({X, Y, Z}, io::DType::kInt16, affine);
      std::vector<std::int16_t> img(n);
      for (int m = 0; m < 4; ++m) {
        for (std::size_t i = 0; i < n; ++i) img[i] = static_cast<std::int16_t>(p.image[m * n + stored(i)]);
        io::write_nifti(dir / (keys[c] + "_" + mods21[m] + ".nii.gz"), h,
                        {reinterpret_cast<const std::uint8_t*>(img.data()), n * sizeof(std::int16_t)});
      }
      auto lh = io::make_nifti_header({X, Y, Z}, io::DType::kUint8, affine);
      io::write_nifti(dir / (keys[c] + "_seg.nii.gz"), lh, label);
      bytes = 4 * n * sizeof(std::int16_t) + n;
    }
    progress.advance(1, bytes);
  });
  progress.finish();

  if (layout == SynthLayout::kNnunet) {  // nnU-Net's dataset.json v2, as Dataset137_BraTS21.py writes it
    nlohmann::ordered_json j;
    j["channel_names"] = {{"0", "T1"}, {"1", "T1ce"}, {"2", "T2"}, {"3", "Flair"}};
    j["labels"] = {{"background", 0}, {"whole tumor", {1, 2, 3}}, {"tumor core", {2, 3}}, {"enhancing tumor", {3}}};
    j["numTraining"] = o.cases;
    j["file_ending"] = ".nii.gz";
    j["regions_class_order"] = {1, 2, 3};
    j["description"] = fmt::format("segscale synth: {} cases, shape {}x{}x{}, {} orientation, seed {}", o.cases, X, Y, Z, o.orientation, o.seed);
    io::write_file_atomic(o.out / "dataset.json", j.dump(2) + "\n");
    return keys;
  }
  nlohmann::ordered_json j;
  j["name"] = "BrainTumour (segscale synthetic phantoms)";
  j["description"] = fmt::format("segscale synth: {} cases, shape {}x{}x{}, {} orientation, seed {}", o.cases, X, Y, Z, o.orientation, o.seed);
  j["tensorImageSize"] = layout == SynthLayout::kMsd ? "4D" : "3D";
  j["modality"] = {{"0", "FLAIR"}, {"1", "T1w"}, {"2", "t1gd"}, {"3", "T2w"}};
  if (layout == SynthLayout::kMsd)
    j["labels"] = {{"0", "background"}, {"1", "edema"}, {"2", "non-enhancing tumor"}, {"3", "enhancing tumour"}};
  else
    j["labels"] = {{"0", "background"}, {"1", "necrotic tumor core"}, {"2", "peritumoral edema"}, {"4", "GD-enhancing tumor"}};
  j["numTraining"] = o.cases;
  j["numTest"] = 0;
  auto training = nlohmann::ordered_json::array();
  for (const auto& k : keys) {
    if (layout == SynthLayout::kMsd) {
      training.push_back({{"image", "./imagesTr/" + k + ".nii.gz"}, {"label", "./labelsTr/" + k + ".nii.gz"}});
    } else {
      auto imgs = nlohmann::ordered_json::array();
      for (const auto& m : mods21) imgs.push_back("./" + k + "/" + k + "_" + m + ".nii.gz");
      training.push_back({{"image", imgs}, {"label", "./" + k + "/" + k + "_seg.nii.gz"}});
    }
  }
  j["training"] = training;
  j["test"] = nlohmann::ordered_json::array();
  io::write_file_atomic(o.out / "dataset.json", j.dump(2) + "\n");
  return keys;
}

}  // namespace segscale::data
