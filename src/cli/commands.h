#pragma once
// One function per subcommand: each registers its flags on `app` and runs the stage when selected.
#include <CLI/CLI.hpp>

#include <string>

namespace segscale::cli {

void add_synth_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_apply_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_prep_command(CLI::App& app);
void add_verify_command(CLI::App& app);
void add_launch_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_plot_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_infer_command(CLI::App& app);  // only in builds with libtorch
void add_bench_command(CLI::App& app);  // only in builds with libtorch
void add_train_command(CLI::App& app);  // only in builds with libtorch

// `segscale plan --data DATA --out PLANS` without its printout (the demo's nnunet recipe): nnU-Net's plan, with
// dataset_fingerprint.json, dataset.json and splits_final.json beside PLANS.
void write_nnunet_plan(const std::string& data, const std::string& plans);

// The label-map presets table: the footer of every command that takes --label-map.
std::string label_map_help();

}  // namespace segscale::cli
