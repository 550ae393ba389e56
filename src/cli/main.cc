// segscale: one binary, one subcommand per pipeline stage (in the style of nnU-Net's entry points).
// Exit codes: 0 success, 1 failure (message on stderr naming the file and the problem), 2 bad usage,
// 75 stopped on request (SIGTERM & co.) after saving a checkpoint: rerun to resume.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <utility>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/failure.h"
#include "cli/sagemaker_train.h"
#include "cli/usage_error.h"
#include "env/job_environment.h"
#include "segscale/version.h"
#include "util/error.h"
#include "util/memory.h"
#include "util/stop_signal.h"

int main(int argc, char** argv) {
  segscale::tune_allocator_for_volumes();
  CLI::App app{"segscale: scalable 3D brain-tumour segmentation training (MONAI-faithful, in C++)", "segscale"};
  app.set_version_flag("--version", std::string(segscale::kVersion));
  app.require_subcommand(1);
  app.footer(
      "Label-map presets: the help of inspect, apply, prep, train, infer and eval (the commands that take --label-map).\n"
      "Errors: one line on stderr starting with 'segscale:'; exit 1 for a failure, 2 for bad usage.");
  segscale::cli::add_synth_command(app);
  segscale::cli::add_inspect_command(app);
  segscale::cli::add_apply_command(app);
  segscale::cli::add_plan_command(app);
  segscale::cli::add_prep_command(app);
  segscale::cli::add_verify_command(app);
  segscale::cli::add_launch_command(app);
  segscale::cli::add_eval_command(app);
  segscale::cli::add_plot_command(app);
  segscale::cli::add_export_command(app);
#ifdef SEGSCALE_HAVE_TORCH
  segscale::cli::add_train_command(app);
  segscale::cli::add_infer_command(app);
  segscale::cli::add_bench_command(app);
#endif
  segscale::cli::add_demo_command(app);
  // In SageMaker mode (see cli/sagemaker_train.h), `segscale train` completes its options from the job's files.
  std::vector<std::string> args(argv, argv + argc);
  try {
    const auto env = segscale::env::JobEnvironment::from_process();
    const auto mode = segscale::cli::sagemaker_mode(env, args);
    if (mode.on) segscale::cli::record_failures_in(mode.failure_file);
    if (!mode.why.empty() && !env.get("RANK")) fmt::print("segscale: {}\n", mode.why);  // once per job, not per launched worker
    const std::function<bool(const CLI::App*)> is_train = [](const CLI::App* c) { return c->get_name() == "train"; };
    const auto trains = std::as_const(app).get_subcommands(is_train);
    if (auto completed = segscale::cli::sagemaker_train_argv(env, args, trains.empty() ? nullptr : trains.front())) args = *completed;
  } catch (const segscale::Error& e) {
    return segscale::cli::fail(fmt::format("usage error: {}", e.what()), 2);
  }
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return segscale::cli::fail(
        "usage error: " + segscale::cli::explain_parse_error(app, std::vector<std::string>(argv + 1, argv + argc), e), 2);
  } catch (const segscale::Stopped& e) {
    return segscale::cli::fail(fmt::format("stopped: {}", e.what()), segscale::kExitStopped);
  } catch (const segscale::UsageError& e) {
    return segscale::cli::fail(fmt::format("usage error: {}", e.what()), 2);
  } catch (const segscale::Error& e) {
    return segscale::cli::fail(fmt::format("error: {}", e.what()), 1);
  } catch (const std::filesystem::filesystem_error& e) {  // e.g. a folder we may not read or create
    return segscale::cli::fail(fmt::format("error: {}: {}", e.path1().string(), e.code().message()), 1);
  } catch (const std::exception& e) {
    return segscale::cli::fail(fmt::format("internal error: {}", e.what()), 1);
  }
  return 0;
}
