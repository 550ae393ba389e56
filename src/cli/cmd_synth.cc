#include <fmt/format.h>

#include "cli/commands.h"
#include "util/plural.h"
#include "data/synth.h"

namespace segscale::cli {

void add_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write a synthetic BraTS-like dataset of NIfTI phantoms");
  auto opts = std::make_shared<data::SynthOptions>();
  auto shape = std::make_shared<std::vector<std::int64_t>>(std::vector<std::int64_t>{240, 240, 155});
  cmd->add_option("--out", opts->out, "Output dataset folder")->required();
  cmd->add_option("--cases", opts->cases, "Number of cases")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--shape", *shape, "Volume shape X,Y,Z in 1 mm voxels")->delimiter(',')->expected(3)->capture_default_str();
  cmd->add_option("--layout", opts->layout, "msd (dataset.json, 4-D images), brats21 (case folders) or nnunet (nnU-Net's raw layout, Dataset137's form of BraTS)")
      ->check(CLI::IsMember({"msd", "brats21", "nnunet"}))->capture_default_str();
  cmd->add_option("--orientation", opts->orientation, "Voxel order of the written files")
      ->check(CLI::IsMember({"RAS", "LPS"}))->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed: same seed, same files")->capture_default_str();
  cmd->add_option("--threads", opts->threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--quiet", opts->quiet, "Only print the summary line");
  cmd->callback([opts, shape] {
    opts->shape = {(*shape)[0], (*shape)[1], (*shape)[2]};
    auto keys = data::synthesize_dataset(*opts);
    fmt::print("wrote {} ({}x{}x{}, {}) to {}\n", plural(static_cast<std::int64_t>(keys.size()), opts->layout + " case"), opts->shape[0], opts->shape[1],
               opts->shape[2], opts->orientation, opts->out.string());
  });
}

}  // namespace segscale::cli
