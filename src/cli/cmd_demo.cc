// segscale demo: the main job end to end on a small built-in synthetic dataset. Grows with the stages.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "data/case_check.h"
#include "data/catalog.h"
#include "data/synth.h"

namespace segscale::cli {
namespace fs = std::filesystem;

void add_demo_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "Run the pipeline on a small synthetic dataset (a few minutes on 2 cores)");
  auto out = std::make_shared<std::string>("segscale-demo");
  auto cases = std::make_shared<int>(8);
  cmd->add_option("--out", *out, "Working folder for the demo's dataset and results")->capture_default_str();
  cmd->add_option("--cases", *cases, "Number of synthetic cases")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->callback([=] {
    fs::path root(*out);
    data::SynthOptions so;
    so.out = root / "data";
    so.cases = *cases;
    so.shape = {96, 96, 64};
    so.layout = "msd";
    fmt::print("[1/2] synth: {} BraTS-like phantoms ({}x{}x{}) -> {}\n", so.cases, so.shape[0], so.shape[1], so.shape[2], so.out.string());
    data::synthesize_dataset(so);
    data::Catalog cat = data::open_catalog(so.out);
    const data::LabelMap& map = data::label_map_preset(cat.label_preset);
    fmt::print("[2/2] check: {} dataset, {} cases, label map {} ({})\n", data::layout_name(cat.layout), cat.training.size(),
               map.name, map.describe());
    std::uint64_t tumour = 0, total = 0;
    for (const auto& c : cat.training) {
      auto r = data::check_case(c, cat, &map);
      for (auto [v, n] : r.label_counts) {
        total += n;
        if (v != 0) tumour += n;
      }
    }
    fmt::print("demo: {} cases consistent, tumour voxels {:.2f}% of {}\n", cat.training.size(),
               100.0 * static_cast<double>(tumour) / static_cast<double>(total), total);
  });
}

}  // namespace segscale::cli
