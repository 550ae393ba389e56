#include "infer/preview.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "infer/png.h"
#include "io/affine.h"

namespace segscale::infer {

namespace {

// The scan's voxel index (i, j, k) of grid voxel `g`, and for each grid axis the scan axis most parallel to it.
struct ScanPoint {
  std::array<std::int64_t, 3> index{};
  std::array<int, 3> axis_of_grid{};
};

ScanPoint to_scan(const Affine& grid, const ScanGrid& scan, const std::array<std::int64_t, 3>& g) {
  const Affine m = inverse(scan.affine) * grid;  // grid voxel -> scan voxel
  ScanPoint p;
  for (int r = 0; r < 3; ++r) {
    const double v = m(r, 0) * g[0] + m(r, 1) * g[1] + m(r, 2) * g[2] + m(r, 3);
    p.index[r] = std::clamp<std::int64_t>(std::llround(v), 0, std::max<std::int64_t>(0, scan.size[r] - 1));
  }
  for (int c = 0; c < 3; ++c) {
    int best = 0;
    for (int r = 1; r < 3; ++r)
      if (std::abs(m(r, c)) > std::abs(m(best, c))) best = r;
    p.axis_of_grid[c] = best;
  }
  return p;
}

}  // namespace

void write_preview(const std::filesystem::path& png, const transforms::Volume& image, const transforms::LabelVolume& regions, int channel,
                   const std::string& title, const ScanGrid& scan) {
  const auto s = image.size;
  const float* v = image.channel(std::min<std::int64_t>(channel, image.channels - 1));
  const std::uint8_t* r = regions.channel(0);
  auto idx = [&](std::int64_t x, std::int64_t y, std::int64_t z) { return static_cast<std::size_t>((x * s[1] + y) * s[2] + z); };
  // Tumour centre: centroid of all labelled voxels (the volume centre if none).
  double cx = 0, cy = 0, cz = 0, n = 0;
  for (std::int64_t x = 0; x < s[0]; ++x)
    for (std::int64_t y = 0; y < s[1]; ++y)
      for (std::int64_t z = 0; z < s[2]; ++z)
        if (r[idx(x, y, z)]) cx += x, cy += y, cz += z, n += 1;
  std::int64_t px = n ? std::lround(cx / n) : s[0] / 2, py = n ? std::lround(cy / n) : s[1] / 2, pz = n ? std::lround(cz / n) : s[2] / 2;
  // Grey window: 0.5..99.5th percentile of the non-zero voxels.
  std::vector<float> nz;
  for (std::int64_t i = 0; i < image.voxels(); i += 7)
    if (v[i] != 0) nz.push_back(v[i]);
  float lo = 0, hi = 1;
  if (!nz.empty()) {
    std::sort(nz.begin(), nz.end());
    lo = nz[nz.size() / 200];
    hi = nz[nz.size() - 1 - nz.size() / 200];
    if (hi <= lo) hi = lo + 1;
  }
  const auto sp = voxel_sizes(image.affine);
  const double mm_per_px = std::max({sp[0] * s[0], sp[1] * s[1], sp[2] * s[2]}) / 256.0;
  const Rgb kTint[4] = {{0, 0, 0}, {40, 200, 40}, {250, 210, 0}, {240, 40, 40}};
  struct Panel {
    std::string name;
    int ax_u, ax_v;  // grid axes shown horizontally and vertically (v drawn upwards)
    std::int64_t fixed_axis, fixed;
  };
  const ScanPoint at = to_scan(image.affine, scan, {px, py, pz});
  auto slice = [&](const char* view, int grid_axis) {
    const int a = at.axis_of_grid[grid_axis];
    return fmt::format("{} {}={}/{}", view, "ijk"[a], at.index[a], scan.size[a]);
  };
  const Panel panels[3] = {{slice("AXIAL", 2), 0, 1, 2, pz}, {slice("CORONAL", 1), 0, 2, 1, py}, {slice("SAGITTAL", 0), 1, 2, 0, px}};
  const int margin = 12, title_h = 40, legend_h = 40;
  int widths[3], heights[3], total_w = margin;
  for (int p = 0; p < 3; ++p) {
    widths[p] = static_cast<int>(std::lround(sp[panels[p].ax_u] * s[panels[p].ax_u] / mm_per_px));
    heights[p] = static_cast<int>(std::lround(sp[panels[p].ax_v] * s[panels[p].ax_v] / mm_per_px));
    total_w += widths[p] + margin;
  }
  const int panel_h = *std::max_element(heights, heights + 3);
  Image img(std::max(total_w, 560), title_h + panel_h + 24 + legend_h + margin, {20, 20, 24});
  img.text(margin, 12, title, {235, 235, 235}, 2);
  int ox = margin;
  for (int p = 0; p < 3; ++p) {
    const Panel& pn = panels[p];
    const int oy = title_h;
    for (int j = 0; j < heights[p]; ++j)
      for (int i = 0; i < widths[p]; ++i) {
        std::int64_t c[3];
        c[pn.fixed_axis] = pn.fixed;
        c[pn.ax_u] = std::min<std::int64_t>(s[pn.ax_u] - 1, static_cast<std::int64_t>((i + 0.5) * mm_per_px / sp[pn.ax_u]));
        c[pn.ax_v] = std::min<std::int64_t>(s[pn.ax_v] - 1, static_cast<std::int64_t>((heights[p] - 1 - j + 0.5) * mm_per_px / sp[pn.ax_v]));
        const std::size_t k = idx(c[0], c[1], c[2]);
        const double g = std::clamp((v[k] - lo) / (hi - lo), 0.0f, 1.0f) * 255.0;
        Rgb col{static_cast<std::uint8_t>(g), static_cast<std::uint8_t>(g), static_cast<std::uint8_t>(g)};
        if (r[k]) {
          const Rgb t = kTint[std::min<int>(r[k], 3)];
          col = {static_cast<std::uint8_t>(0.45 * t.r + 0.55 * col.r), static_cast<std::uint8_t>(0.45 * t.g + 0.55 * col.g),
                 static_cast<std::uint8_t>(0.45 * t.b + 0.55 * col.b)};
        }
        img.at(ox + i, oy + (panel_h - heights[p]) + j) = col;
      }
    img.text(ox, title_h + panel_h + 6, pn.name, {200, 200, 200}, 2);
    // Which way is which (neurological convention: the patient's left on the left... labelled, not assumed).
    if (pn.ax_u == 0) {
      img.text(ox + 2, title_h + panel_h - heights[p] + 2, "L", {255, 255, 255}, 2);
      img.text(ox + widths[p] - 12, title_h + panel_h - heights[p] + 2, "R", {255, 255, 255}, 2);
    } else {
      img.text(ox + 2, title_h + panel_h - heights[p] + 2, "P", {255, 255, 255}, 2);
      img.text(ox + widths[p] - 12, title_h + panel_h - heights[p] + 2, "A", {255, 255, 255}, 2);
    }
    ox += widths[p] + margin;
  }
  const char* names[3] = {"EDEMA (WT)", "CORE (TC)", "ENHANCING (ET)"};
  int lx = margin, ly = title_h + panel_h + 30;
  for (int k = 1; k <= 3; ++k) {
    img.fill_rect(lx, ly, 16, 16, kTint[k]);
    img.text(lx + 22, ly + 1, names[k - 1], {230, 230, 230}, 2);
    lx += 22 + Image::text_width(names[k - 1]) + 24;
  }
  write_png(png, img);
}

}  // namespace segscale::infer
