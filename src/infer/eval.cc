#include "infer/eval.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "data/catalog.h"
#include "io/file.h"
#include "io/nifti_image.h"
#include "util/error.h"

namespace segscale::infer {
namespace fs = std::filesystem;
namespace {

using Size = std::array<std::int64_t, 3>;

std::vector<std::uint8_t> surface(const std::vector<std::uint8_t>& m, const Size& s) {
  std::vector<std::uint8_t> out(m.size(), 0);
  auto at = [&](std::int64_t x, std::int64_t y, std::int64_t z) -> bool {
    if (x < 0 || y < 0 || z < 0 || x >= s[0] || y >= s[1] || z >= s[2]) return false;
    return m[static_cast<std::size_t>(x + s[0] * (y + s[1] * z))];
  };
  for (std::int64_t z = 0; z < s[2]; ++z)
    for (std::int64_t y = 0; y < s[1]; ++y)
      for (std::int64_t x = 0; x < s[0]; ++x)
        if (at(x, y, z) && !(at(x - 1, y, z) && at(x + 1, y, z) && at(x, y - 1, z) && at(x, y + 1, z) && at(x, y, z - 1) && at(x, y, z + 1)))
          out[static_cast<std::size_t>(x + s[0] * (y + s[1] * z))] = 1;
  return out;
}

// 1-D squared Euclidean distance transform (Felzenszwalb & Huttenlocher) with sample spacing `h`.
void edt_1d(const double* f, double* d, std::int64_t n, double h, std::vector<std::int64_t>& v, std::vector<double>& z) {
  const double inf = std::numeric_limits<double>::infinity();
  v.assign(static_cast<std::size_t>(n), 0);
  z.assign(static_cast<std::size_t>(n + 1), 0);
  std::int64_t k = -1;
  for (std::int64_t q = 0; q < n; ++q) {
    if (f[q] == inf) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -inf;
      z[1] = inf;
      continue;
    }
    double sq;
    for (;;) {
      const std::int64_t p = v[k];
      sq = ((f[q] + (h * q) * (h * q)) - (f[p] + (h * p) * (h * p))) / (2 * h * h * (q - p));
      if (sq <= z[k] && k > 0) --k;
      else break;
    }
    if (sq <= z[k]) {  // k == 0 and the new parabola dominates everywhere
      v[0] = q;
      z[0] = -inf;
      z[1] = inf;
      continue;
    }
    ++k;
    v[k] = q;
    z[k] = sq;
    z[k + 1] = inf;
  }
  if (k < 0) {
    for (std::int64_t q = 0; q < n; ++q) d[q] = inf;
    return;
  }
  std::int64_t j = 0;
  for (std::int64_t q = 0; q < n; ++q) {
    while (z[j + 1] < q) ++j;
    const double dq = h * (q - v[j]);
    d[q] = dq * dq + f[v[j]];
  }
}

// Distance (mm) from every voxel to the nearest voxel of `seeds`.
std::vector<double> distance_to(const std::vector<std::uint8_t>& seeds, const Size& s, const std::array<double, 3>& sp) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> g(seeds.size());
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = seeds[i] ? 0.0 : inf;
  std::vector<std::int64_t> v;
  std::vector<double> z, line, out;
  const std::int64_t stride[3] = {1, s[0], s[0] * s[1]};
  for (int axis = 0; axis < 3; ++axis) {
    const std::int64_t n = s[axis];
    line.resize(static_cast<std::size_t>(n));
    out.resize(static_cast<std::size_t>(n));
    const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
    for (std::int64_t i = 0; i < s[a1]; ++i)
      for (std::int64_t j = 0; j < s[a2]; ++j) {
        const std::int64_t base = i * stride[a1] + j * stride[a2];
        for (std::int64_t q = 0; q < n; ++q) line[q] = g[static_cast<std::size_t>(base + q * stride[axis])];
        edt_1d(line.data(), out.data(), n, sp[axis], v, z);
        for (std::int64_t q = 0; q < n; ++q) g[static_cast<std::size_t>(base + q * stride[axis])] = out[q];
      }
  }
  for (double& x : g) x = std::sqrt(x);
  return g;
}

double percentile95(std::vector<double> d) {
  std::sort(d.begin(), d.end());
  const double pos = 0.95 * static_cast<double>(d.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, d.size() - 1);
  return d[lo] + (d[hi] - d[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

std::pair<double, double> dice_and_hd95(const std::vector<std::uint8_t>& pred, const std::vector<std::uint8_t>& truth, const Size& size,
                                        const std::array<double, 3>& spacing) {
  std::uint64_t p = 0, t = 0, both = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    p += pred[i] != 0;
    t += truth[i] != 0;
    both += pred[i] && truth[i];
  }
  if (p == 0 && t == 0) return {1.0, 0.0};
  if (p == 0 || t == 0) return {0.0, kEmptyHausdorff};
  const double dice = 2.0 * static_cast<double>(both) / static_cast<double>(p + t);
  auto sp = surface(pred, size), st = surface(truth, size);
  auto d_to_truth = distance_to(st, size, spacing), d_to_pred = distance_to(sp, size, spacing);
  std::vector<double> a, b;
  for (std::size_t i = 0; i < sp.size(); ++i) {
    if (sp[i]) a.push_back(d_to_truth[i]);
    if (st[i]) b.push_back(d_to_pred[i]);
  }
  return {dice, std::max(percentile95(a), percentile95(b))};
}

namespace {

std::vector<fs::path> prediction_files(const fs::path& pred_dir) {
  std::vector<fs::path> preds;
  for (const auto& e : fs::directory_iterator(pred_dir))
    if (io::has_suffix(e.path(), ".nii.gz") || io::has_suffix(e.path(), ".nii")) {
      const std::string n = e.path().filename().string();
      if (n.find("_probabilities") == std::string::npos) preds.push_back(e.path());
    }
  std::sort(preds.begin(), preds.end());
  return preds;
}

// The map segscale infer wrote the predictions in (their header's description); empty for other files.
std::string prediction_numbering(const std::vector<fs::path>& preds) {
  if (preds.empty()) return {};
  try {
    const std::string d = io::read_nifti_header(preds.front()).descrip;
    const std::string tag = "segscale prediction, labels ";
    if (d.starts_with(tag)) return data::label_map_preset(d.substr(tag.size())).name;
  } catch (const Error&) {
    // not a segscale prediction
  }
  return {};
}

// The truth's numbering: its dataset (dataset.json, BraTS folders), or the dataset its same-named label files sit in.
data::Numbering truth_numbering(const std::vector<fs::path>& preds, const fs::path& truth_dir) {
  if (!fs::is_directory(truth_dir)) return {};
  const bool same_named = !preds.empty() && fs::exists(truth_dir / preds.front().filename());
  if (same_named) return data::label_preset_for_file(truth_dir / preds.front().filename());
  try {
    const data::Catalog cat = data::open_catalog(truth_dir);
    return {cat.label_preset, "the truth dataset: " + cat.label_preset_reason, cat.label_preset_also};
  } catch (const Error&) {
    return {};  // evaluate() reports what is wrong with it
  }
}

}  // namespace

EvalLabelMaps choose_eval_label_maps(const fs::path& pred_dir, const fs::path& truth_dir, const std::string& both, const std::string& pred_flag,
                                     const std::string& truth_flag) {
  const std::vector<fs::path> preds = fs::is_directory(pred_dir) ? prediction_files(pred_dir) : std::vector<fs::path>{};
  EvalLabelMaps m;
  const std::string pred_data = prediction_numbering(preds);
  const data::Numbering truth_data = truth_numbering(preds, truth_dir);
  auto given = [&](const std::string& own, const char* flag, std::string& name, std::string& source) {
    if (!own.empty()) name = own, source = flag;
    else if (!both.empty()) name = both, source = "--label-map";
    return !name.empty();
  };
  if (!given(pred_flag, "--pred-label-map", m.pred, m.pred_source) && !pred_data.empty())
    m.pred = pred_data, m.pred_source = "the predictions' header (the training run's, as segscale infer wrote them)";
  if (!given(truth_flag, "--truth-label-map", m.truth, m.truth_source) && !truth_data.preset.empty()) {
    const bool reads_as_pred = std::find(truth_data.also.begin(), truth_data.also.end(), m.pred) != truth_data.also.end();
    m.truth = reads_as_pred ? m.pred : truth_data.preset;
    m.truth_source = reads_as_pred ? fmt::format("{} ({} allowed; the predictions' map)", truth_data.reason, m.pred) : truth_data.reason;
  }
  if (m.pred.empty() && !m.truth.empty()) m.pred = m.truth, m.pred_source = "the truth's (the predictions show none)";
  if (m.truth.empty() && !m.pred.empty()) m.truth = m.pred, m.truth_source = "the predictions' (the truth shows none)";
  if (m.pred.empty()) {
    m.pred = m.truth = "brats21";
    m.pred_source = m.truth_source = "no hint in the data (pass --label-map)";
  }
  return m;
}

std::vector<std::string> truth_without_prediction(const fs::path& pred_dir, const fs::path& truth_dir) {
  if (!fs::is_directory(pred_dir)) throw error_at(pred_dir.string(), "not a folder of predictions");
  if (!fs::is_directory(truth_dir)) throw error_at(truth_dir.string(), "not a folder of ground truth");
  const auto preds = prediction_files(pred_dir);
  std::set<std::string> predicted;
  for (const auto& p : preds) predicted.insert(data::case_key_from_path(p));
  std::vector<std::string> truth;
  if (!preds.empty() && fs::exists(truth_dir / preds.front().filename())) {  // a folder of same-named label files
    for (const auto& e : fs::directory_iterator(truth_dir))
      if (e.is_regular_file() && (io::has_suffix(e.path(), ".nii.gz") || io::has_suffix(e.path(), ".nii")))
        truth.push_back(data::case_key_from_path(e.path()));
  } else {
    for (const auto& c : data::open_catalog(truth_dir).training) truth.push_back(c.key);
  }
  std::vector<std::string> out;
  for (const auto& k : truth)
    if (!predicted.count(k)) out.push_back(k);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<CaseScore> evaluate(const fs::path& pred_dir, const fs::path& truth_dir, const data::LabelMap& pred_map, const data::LabelMap& truth_map) {
  if (!fs::is_directory(pred_dir)) throw error_at(pred_dir.string(), "not a folder of predictions");
  if (!fs::is_directory(truth_dir)) throw error_at(truth_dir.string(), "not a folder of ground truth");
  const std::vector<fs::path> preds = prediction_files(pred_dir);
  if (preds.empty()) throw error_at(pred_dir.string(), "no .nii.gz predictions found");
  // Truth: a folder of same-named label files, or a dataset whose cases carry labels.
  std::optional<data::Catalog> cat;
  if (!fs::exists(truth_dir / preds.front().filename())) cat = data::open_catalog(truth_dir);
  std::vector<CaseScore> out;
  for (const auto& pf : preds) {
    const std::string key = data::case_key_from_path(pf);
    fs::path tf;
    if (cat) {
      const data::Case* c = cat->find(key);
      if (!c || c->label.empty()) throw Error(fmt::format("case {}: no ground truth label in {}", key, truth_dir.string()));
      tf = c->label;
    } else {
      tf = truth_dir / pf.filename();
      if (!fs::exists(tf)) throw Error(fmt::format("case {}: no ground truth {}", key, tf.string()));
    }
    auto pi = io::read_nifti(pf);
    auto ti = io::read_nifti(tf);
    if (pi.header.shape() != ti.header.shape())
      throw Error(fmt::format("case {}: prediction shape {} differs from the truth's {} ({} vs {}): predicted on another scan?", key,
                              fmt::join(pi.header.shape(), "x"), fmt::join(ti.header.shape(), "x"), pf.string(), tf.string()));
    auto pv = io::to_float32(pi), tv = io::to_float32(ti);
    data::count_and_check_labels(tv.data(), tv.size(), truth_map, tf.string());
    data::count_and_check_labels(pv.data(), pv.size(), pred_map, pf.string());
    const auto sh = ti.header.shape();
    const Size size{sh[0], sh.size() > 1 ? sh[1] : 1, sh.size() > 2 ? sh[2] : 1};
    const auto spacing = voxel_sizes(ti.affine());
    CaseScore cs;
    cs.key = key;
    for (int c = 0; c < 3; ++c) {
      std::array<bool, 256> in_pred{}, in_truth{};
      for (int v : pred_map.channels[c]) in_pred[static_cast<std::size_t>(v)] = true;
      for (int v : truth_map.channels[c]) in_truth[static_cast<std::size_t>(v)] = true;
      std::vector<std::uint8_t> pm(pv.size()), tm(tv.size());
      for (std::size_t i = 0; i < pv.size(); ++i) {
        pm[i] = in_pred[static_cast<std::size_t>(pv[i])];
        tm[i] = in_truth[static_cast<std::size_t>(tv[i])];
      }
      auto [d, h] = dice_and_hd95(pm, tm, size, spacing);
      cs.dice[c] = d;
      cs.hd95[c] = h;
    }
    out.push_back(cs);
  }
  return out;
}

}  // namespace segscale::infer
