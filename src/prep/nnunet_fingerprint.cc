#include "prep/nnunet_fingerprint.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "io/nifti_image.h"
#include "prep/plan.h"
#include "transforms/rng.h"
#include "util/error.h"
#include "util/parallel.h"

namespace segscale::prep {
namespace {

Shape nnunet_shape(const io::NiftiHeader& h) { return {h.dim[3], h.dim[2], h.dim[1]}; }

// A case's drawn foreground intensities: per channel, each distinct voxel drawn with how often it was drawn.
struct CaseSummary {
  std::array<double, 3> spacing{};
  Shape shape_after_crop{};
  double relative_size = 1;
  std::vector<std::vector<std::pair<float, std::uint64_t>>> drawn;
};

CaseSummary summarise_case(const data::Case& c, std::size_t channels, std::uint64_t num_samples) {
  const CaseArrays a = read_case_arrays(c, channels);
  std::vector<const float*> ptrs;
  for (const auto& ch : a.channels) ptrs.push_back(ch.data());
  const std::vector<std::uint8_t> mask = nonzero_mask(ptrs, a.shape);
  const Box box = bounding_box(mask, a.shape);
  CaseSummary s;
  s.spacing = a.spacing;
  s.shape_after_crop = box.size();
  s.relative_size = static_cast<double>(voxels(box.size())) / static_cast<double>(voxels(a.shape));
  // Foreground (label > 0) voxels of the cropped case in C order, as images[i][seg[0] > 0] lists them.
  std::vector<std::size_t> fg;
  for (std::int64_t i = box.lo[0]; i < box.hi[0]; ++i)
    for (std::int64_t j = box.lo[1]; j < box.hi[1]; ++j)
      for (std::int64_t k = box.lo[2]; k < box.hi[2]; ++k) {
        const std::size_t v = static_cast<std::size_t>((i * a.shape[1] + j) * a.shape[2] + k);
        if (a.seg[v] > 0) fg.push_back(v);
      }
  // rs = np.random.RandomState(1234); per channel rs.choice(foreground, num_samples, replace=True), which is
  // randint(0, len(foreground)) per draw.
  std::mt19937 rs(1234);
  s.drawn.resize(channels);
  if (fg.empty()) return s;
  std::vector<std::uint64_t> count(fg.size());
  for (std::size_t ch = 0; ch < channels; ++ch) {
    std::fill(count.begin(), count.end(), 0);
    for (std::uint64_t d = 0; d < num_samples; ++d)
      ++count[static_cast<std::size_t>(transforms::legacy_randint(rs, 0, static_cast<std::int64_t>(fg.size())))];
    for (std::size_t i = 0; i < fg.size(); ++i)
      if (count[i]) s.drawn[ch].emplace_back(a.channels[ch][fg[i]], count[i]);
  }
  return s;
}

// numpy's linear percentile of the multiset {value x count}, sorted by value.
double weighted_percentile(const std::vector<std::pair<float, std::uint64_t>>& sorted, std::uint64_t n, double q) {
  const double h = q / 100.0 * static_cast<double>(n - 1);
  const std::uint64_t lo = static_cast<std::uint64_t>(std::floor(h));
  const double t = h - static_cast<double>(lo);
  const auto at = [&](std::uint64_t idx) {
    std::uint64_t seen = 0;
    for (const auto& [v, c] : sorted) {
      seen += c;
      if (idx < seen) return static_cast<double>(v);
    }
    return static_cast<double>(sorted.back().first);
  };
  const double a = at(lo), b = at(std::min(lo + 1, n - 1));
  // numpy's _lerp: from the nearer end.
  return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t;
}

IntensityProperties properties_of(std::vector<std::pair<float, std::uint64_t>> drawn) {
  std::sort(drawn.begin(), drawn.end());
  std::uint64_t n = 0;
  double sum = 0;
  for (const auto& [v, c] : drawn) {
    n += c;
    sum += static_cast<double>(v) * static_cast<double>(c);
  }
  IntensityProperties p;
  p.mean = sum / static_cast<double>(n);
  double sq = 0;
  for (const auto& [v, c] : drawn) sq += (v - p.mean) * (v - p.mean) * static_cast<double>(c);
  p.std = std::sqrt(sq / static_cast<double>(n));
  p.min = drawn.front().first;
  p.max = drawn.back().first;
  p.median = weighted_percentile(drawn, n, 50.0);
  p.percentile_00_5 = weighted_percentile(drawn, n, 0.5);
  p.percentile_99_5 = weighted_percentile(drawn, n, 99.5);
  return p;
}

}  // namespace

CaseArrays read_case_arrays(const data::Case& c, std::size_t channels) {
  CaseArrays a;
  const auto take = [&](const std::filesystem::path& file, std::size_t parts) {
    const io::NiftiImage img = io::read_nifti(file);
    const Shape shape = nnunet_shape(img.header);
    if (a.channels.empty()) {
      a.shape = shape;
      a.spacing = {std::abs(img.header.pixdim[3]), std::abs(img.header.pixdim[2]), std::abs(img.header.pixdim[1])};
    } else if (shape != a.shape) {
      throw error_at(file.string(), fmt::format("{}x{}x{} voxels, but the case's first channel has {}x{}x{}", shape[2], shape[1], shape[0],
                                                a.shape[2], a.shape[1], a.shape[0]));
    }
    const std::uint64_t per = static_cast<std::uint64_t>(voxels(shape));
    if (img.header.voxel_count() != per * parts)
      throw error_at(file.string(), fmt::format("holds {} volume(s) where {} channels were expected (give one file per channel, or one "
                                                "4-D file holding them all)", img.header.voxel_count() / per, parts));
    std::vector<float> all = io::to_float32(img);
    for (std::size_t p = 0; p < parts; ++p)
      a.channels.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(p * per), all.begin() + static_cast<std::ptrdiff_t>((p + 1) * per));
  };
  if (c.images.size() == 1 && channels > 1) {
    take(c.images.front(), channels);
  } else {
    if (c.images.size() != channels)
      throw Error(fmt::format("case {}: {} image files for {} channels", c.key, c.images.size(), channels));
    for (const auto& f : c.images) take(f, 1);
  }
  if (!c.label.empty()) {
    const io::NiftiImage seg = io::read_nifti(c.label);
    if (nnunet_shape(seg.header) != a.shape || seg.header.voxel_count() != static_cast<std::uint64_t>(voxels(a.shape)))
      throw error_at(c.label.string(), fmt::format("the label's grid ({} voxels) is not the images' ({}x{}x{})", seg.header.voxel_count(),
                                                   a.shape[2], a.shape[1], a.shape[0]));
    a.seg = io::to_float32(seg);
  }
  return a;
}

DatasetFingerprint extract_fingerprint(const data::Catalog& catalog, int threads) {
  const auto& cases = catalog.training;
  if (cases.empty()) throw error_at(catalog.root.string(), "no training cases to take a fingerprint of");
  const std::size_t channels = catalog.modalities.size();
  // nnU-Net: 10e7 foreground voxels for the whole dataset, int(10e7 // cases) per case and channel.
  const std::uint64_t num_samples = static_cast<std::uint64_t>(1e8 / static_cast<double>(cases.size()));
  std::vector<CaseSummary> summaries(cases.size());
  parallel_for(cases.size(), resolve_threads(threads), [&](std::size_t i) {
    try {
      if (cases[i].label.empty()) throw Error("no label file");
      summaries[i] = summarise_case(cases[i], channels, num_samples);
    } catch (const Error& e) {
      throw Error(fmt::format("fingerprint of case {}: {}", cases[i].key, e.what()));
    }
  });
  DatasetFingerprint f;
  std::vector<double> relative;
  std::vector<std::vector<std::pair<float, std::uint64_t>>> drawn(channels);
  for (auto& s : summaries) {
    f.spacings.push_back(s.spacing);
    f.shapes_after_crop.push_back(s.shape_after_crop);
    relative.push_back(s.relative_size);
    for (std::size_t ch = 0; ch < channels; ++ch) drawn[ch].insert(drawn[ch].end(), s.drawn[ch].begin(), s.drawn[ch].end());
  }
  f.median_relative_size_after_cropping = median(relative);
  for (std::size_t ch = 0; ch < channels; ++ch) {
    if (drawn[ch].empty())
      throw error_at(catalog.root.string(), "no training case has a foreground voxel (label > 0): nnU-Net's fingerprint needs some");
    f.foreground_intensity_properties_per_channel.push_back(properties_of(std::move(drawn[ch])));
  }
  return f;
}

nlohmann::ordered_json DatasetFingerprint::to_json() const {
  // nnU-Net saves the fingerprint with sorted keys (and its plans copy the per-channel entries as loaded).
  nlohmann::ordered_json props = nlohmann::ordered_json::object();
  for (std::size_t c = 0; c < foreground_intensity_properties_per_channel.size(); ++c) {
    const auto& p = foreground_intensity_properties_per_channel[c];
    props[std::to_string(c)] = {{"max", p.max}, {"mean", p.mean}, {"median", p.median}, {"min", p.min},
                                {"percentile_00_5", p.percentile_00_5}, {"percentile_99_5", p.percentile_99_5}, {"std", p.std}};
  }
  nlohmann::ordered_json j;
  j["foreground_intensity_properties_per_channel"] = props;
  j["median_relative_size_after_cropping"] = median_relative_size_after_cropping;
  j["shapes_after_crop"] = shapes_after_crop;
  j["spacings"] = spacings;
  return j;
}

DatasetFingerprint DatasetFingerprint::from_json(const nlohmann::json& j, const std::string& where) {
  try {
    DatasetFingerprint f;
    f.spacings = j.at("spacings").get<std::vector<std::array<double, 3>>>();
    f.shapes_after_crop = j.at("shapes_after_crop").get<std::vector<Shape>>();
    const auto& props = j.at("foreground_intensity_properties_per_channel");
    for (std::size_t c = 0; c < props.size(); ++c) {
      const auto& p = props.at(std::to_string(c));
      f.foreground_intensity_properties_per_channel.push_back({p.at("mean").get<double>(), p.at("median").get<double>(), p.at("std").get<double>(),
                                                               p.at("min").get<double>(), p.at("max").get<double>(),
                                                               p.at("percentile_99_5").get<double>(), p.at("percentile_00_5").get<double>()});
    }
    f.median_relative_size_after_cropping = j.at("median_relative_size_after_cropping").get<double>();
    if (f.spacings.empty() || f.spacings.size() != f.shapes_after_crop.size()) throw Error("spacings and shapes_after_crop must list the same cases");
    return f;
  } catch (const nlohmann::json::exception& e) {
    throw error_at(where, fmt::format("not an nnU-Net dataset fingerprint: {}", e.what()));
  } catch (const Error& e) {
    throw error_at(where, fmt::format("not an nnU-Net dataset fingerprint: {}", e.what()));
  }
}

}  // namespace segscale::prep
