#include "train/plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "infer/png.h"
#include "util/error.h"

namespace segscale::train {

namespace {
struct Series {
  std::vector<double> x, y;
  infer::Rgb color;
  const char* name;
};

void chart(infer::Image& img, int ox, int oy, int w, int h, const std::vector<Series>& series, double ymin, double ymax, const std::string& title,
           bool small_values = false) {
  using infer::Rgb;
  double xmax = 1;
  for (const auto& s : series)
    if (!s.x.empty()) xmax = std::max(xmax, *std::max_element(s.x.begin(), s.x.end()));
  img.fill_rect(ox, oy, w, h, {32, 32, 38});
  for (int k = 0; k <= 4; ++k) {  // grid and y labels
    const int yy = oy + h - k * h / 4;
    img.line(ox, yy, ox + w - 1, yy, {60, 60, 68});
    const double v = ymin + (ymax - ymin) * k / 4;  // learning rates are 1e-4..1e-2: two significant digits
    img.text(ox - 52, yy - 6, small_values ? fmt::format("{:.2G}", v) : fmt::format("{:.2f}", v), {200, 200, 200}, 1);
  }
  for (double t : axis_ticks(xmax, 4, true)) {  // step numbers: whole, each once
    const int xx = ox + static_cast<int>(std::lround(t / xmax * (w - 1)));
    img.text(xx - 8, oy + h + 6, fmt::format("{:.0f}", t), {200, 200, 200}, 1);
  }
  img.text(ox, oy - 20, title, {235, 235, 235}, 2);
  for (const auto& s : series) {
    for (std::size_t i = 0; i + 1 < s.x.size(); ++i) {
      auto px = [&](double x) { return ox + static_cast<int>(std::lround(x / xmax * (w - 1))); };
      auto py = [&](double y) { return oy + h - 1 - static_cast<int>(std::lround(std::clamp((y - ymin) / (ymax - ymin), 0.0, 1.0) * (h - 1))); };
      img.line(px(s.x[i]), py(s.y[i]), px(s.x[i + 1]), py(s.y[i + 1]), s.color);
    }
    if (s.x.size() == 1) img.fill_rect(ox + static_cast<int>(s.x[0] / xmax * (w - 1)) - 2, oy + h - 1 - static_cast<int>((s.y[0] - ymin) / (ymax - ymin) * (h - 1)) - 2, 5, 5, s.color);
  }
}
}  // namespace

std::vector<double> axis_ticks(double max, int most, bool integers) {
  double step = 0;
  for (double decade = integers ? 1.0 : std::pow(10.0, std::floor(std::log10(max / most))); step == 0; decade *= 10)
    for (double m : {1.0, 2.0, 5.0})
      if (step == 0 && m * decade * most >= max) step = m * decade;
  std::vector<double> ticks;
  for (int k = 0; k * step <= max * (1 + 1e-9); ++k) ticks.push_back(k * step);
  return ticks;
}

std::string loss_title(const std::filesystem::path& config_json) {
  std::ifstream in(config_json);
  if (!in) return "LOSS";
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return "LOSS";
  }
  const nlohmann::json loss = c.value("loss", nlohmann::json::object());
  const std::string name = loss.is_object() ? loss.value("name", std::string()) : std::string();
  std::string title = name == "dice" ? "DICE LOSS" : name == "dicece" ? "DICE + CE LOSS" : name == "dicefocal" ? "DICE + FOCAL LOSS"
                      : name == "dc_and_bce" ? "DICE + BCE LOSS (NNU-NET)" : "LOSS";
  if (c.contains("model") && c["model"].is_object() && c["model"].value("deep_supervision", false)) title += " (DEEP SUP.)";
  return title;
}

std::vector<std::string> plot_metrics(const std::filesystem::path& path, const std::filesystem::path& png) {
  std::ifstream in(path);
  if (!in) throw error_at(path.string(), "cannot open");
  Series loss{{}, {}, {90, 160, 255}, "loss"}, lr{{}, {}, {230, 150, 60}, "lr"};
  Series tc{{}, {}, {250, 210, 0}, "TC"}, wt{{}, {}, {40, 200, 40}, "WT"}, et{{}, {}, {240, 40, 40}, "ET"}, mean{{}, {}, {240, 240, 240}, "mean"};
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      continue;  // a torn last line
    }
    const double step = j.value("step", 0.0);
    if (j.value("type", "") == "step" && j.contains("loss")) loss.x.push_back(step), loss.y.push_back(j["loss"].get<double>());
    if (j.value("type", "") == "step" && j.contains("lr")) lr.x.push_back(step), lr.y.push_back(j["lr"].get<double>());
    if (j.value("type", "") == "val") {
      for (auto* s : {&tc, &wt, &et, &mean}) s->x.push_back(step);
      tc.y.push_back(j.value("dice_tc", 0.0));
      wt.y.push_back(j.value("dice_wt", 0.0));
      et.y.push_back(j.value("dice_et", 0.0));
      mean.y.push_back(j.value("dice_mean", 0.0));
    }
  }
  if (loss.x.empty() && mean.x.empty()) throw error_at(path.string(), "no step or validation lines to plot");
  // Smooth the per-step loss with a moving average over ~1% of the run, keeping the raw curve faint.
  Series smooth{loss.x, loss.y, {150, 200, 255}, "loss (smoothed)"};
  const std::size_t win = std::max<std::size_t>(1, loss.y.size() / 50);
  for (std::size_t i = 0; i < loss.y.size(); ++i) {
    double s = 0;
    std::size_t n = 0;
    for (std::size_t k = i >= win ? i - win : 0; k <= i; ++k) s += loss.y[k], ++n;
    smooth.y[i] = s / static_cast<double>(n);
  }
  loss.color = {50, 80, 130};
  const double lmax = loss.y.empty() ? 1 : *std::max_element(loss.y.begin(), loss.y.end());
  const double rmax = lr.y.empty() ? 1 : *std::max_element(lr.y.begin(), lr.y.end());
  const std::vector<std::string> titles{loss_title(path.parent_path() / "config.json"), "LEARNING RATE", "VALIDATION DICE"};
  infer::Image img(1500, 420, {20, 20, 24});
  chart(img, 70, 50, 400, 300, {loss, smooth}, 0.0, std::max(lmax, 1e-6), titles[0]);
  chart(img, 570, 50, 400, 300, {lr}, 0.0, std::max(rmax, 1e-12), titles[1], /*small_values=*/true);
  chart(img, 1070, 50, 400, 300, {tc, wt, et, mean}, 0.0, 1.0, titles[2]);
  img.text(70, 385, "STEP", {200, 200, 200}, 2);
  int lx = 1070;
  for (const auto* s : {&tc, &wt, &et, &mean}) {
    img.fill_rect(lx, 386, 14, 14, s->color);
    img.text(lx + 20, 387, s->name, {230, 230, 230}, 2);
    lx += 40 + infer::Image::text_width(s->name);
  }
  infer::write_png(png, img);
  return titles;
}

}  // namespace segscale::train
