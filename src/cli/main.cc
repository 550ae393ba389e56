// segscale: one binary, one subcommand per pipeline stage (in the style of nnU-Net's entry points).
// Exit codes: 0 success, 1 failure (message on stderr naming the file and the problem), 2 bad usage.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "segscale/version.h"
#include "util/error.h"
#include "util/memory.h"

int main(int argc, char** argv) {
  segscale::tune_allocator_for_volumes();
  CLI::App app{"segscale: scalable 3D brain-tumour segmentation training (MONAI-faithful, in C++)", "segscale"};
  app.set_version_flag("--version", std::string(segscale::kVersion));
  app.require_subcommand(1);
  segscale::cli::add_synth_command(app);
  segscale::cli::add_inspect_command(app);
  segscale::cli::add_apply_command(app);
  segscale::cli::add_prep_command(app);
  segscale::cli::add_verify_command(app);
  segscale::cli::add_launch_command(app);
  segscale::cli::add_eval_command(app);
  segscale::cli::add_plot_command(app);
#ifdef SEGSCALE_HAVE_TORCH
  segscale::cli::add_train_command(app);
  segscale::cli::add_infer_command(app);
  segscale::cli::add_bench_command(app);
#endif
  segscale::cli::add_demo_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and a usage hint
    return 2;
  } catch (const segscale::UsageError& e) {
    fmt::print(stderr, "segscale: usage error: {}\n", e.what());
    return 2;
  } catch (const segscale::Error& e) {
    fmt::print(stderr, "segscale: error: {}\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {  // e.g. a folder we may not read or create
    fmt::print(stderr, "segscale: error: {}: {}\n", e.path1().string(), e.code().message());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "segscale: internal error: {}\n", e.what());
    return 1;
  }
  return 0;
}
