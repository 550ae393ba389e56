// segscale plan: nnU-Net v2's plan for a dataset (nnunetv2 2.8.1's default ExperimentPlanner: fingerprint,
// target spacing, patch, network topology, batch), written as nnU-Net's nnUNetPlans.json and printed as a view
// (with DynUNet's kernel_size and strides); or the view of a plans file nnU-Net or segscale wrote.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/usage_error.h"
#include "data/catalog.h"
#include "io/file.h"
#include "io/json_file.h"
#include "prep/nnunet_fingerprint.h"
#include "prep/nnunet_plan.h"
#include "train/split.h"
#include "util/error.h"
#include "util/plural.h"

namespace segscale::cli {
namespace {

struct PlanOptions {
  std::string data, out, fingerprint, plans, configuration = "3d_fullres";
  std::vector<std::int64_t> patch;
  bool json = false;
  int threads = 0;
  bool quiet = false;  // write the files, print nothing
};

template <typename T>
std::string by(const std::vector<T>& v) {
  std::vector<std::string> s;
  for (const auto& x : v) s.push_back(fmt::format("{}", x));
  return fmt::format("{}", fmt::join(s, "x"));
}

nlohmann::json read_json(const std::string& file) { return io::read_json_file(file); }

// What the planner reads from dataset.json, or the layout's equivalent (BraTS folders: four channels, labels
// background + three).
prep::PlanDataset plan_dataset(const data::Catalog& cat) {
  prep::PlanDataset d;
  d.name = cat.root.filename().string();
  if (d.name.empty()) d.name = cat.root.parent_path().filename().string();
  d.channel_names = cat.modalities;
  d.num_training = static_cast<int>(cat.training.size());
  d.num_label_keys = 4;
  const auto dj = cat.root / "dataset.json";
  if (std::filesystem::exists(dj)) {
    const nlohmann::json j = read_json(dj.string());
    if (j.contains("labels") && j["labels"].is_object()) d.num_label_keys = static_cast<int>(j["labels"].size());
    if (j.contains("numTraining") && j["numTraining"].is_number_integer()) d.num_training = j["numTraining"].get<int>();
  }
  return d;
}

void print_view(const nlohmann::json& plans, const std::string& configuration, const std::string& where) {
  try {
    const auto& configs = plans.at("configurations");
    if (!configs.contains(configuration)) {
      std::vector<std::string> names;
      for (auto it = configs.begin(); it != configs.end(); ++it) names.push_back(it.key());
      throw error_at(where, fmt::format("no configuration \"{}\" (it has {})", configuration, fmt::join(names, ", ")));
    }
    nlohmann::json c = configs.at(configuration);
    if (c.contains("inherits_from")) {  // 3d_cascade_fullres: the parent's settings, then its own
      nlohmann::json merged = configs.at(c["inherits_from"].get<std::string>());
      merged.update(c);
      c = merged;
    }
    const auto& a = c.at("architecture").at("arch_kwargs");
    const auto strides = a.at("strides").get<std::vector<std::vector<int>>>();
    const auto kernels = a.at("kernel_sizes").get<std::vector<std::vector<int>>>();
    std::vector<std::vector<int>> upsample(strides.begin() + 1, strides.end());
    fmt::print("configuration       {} of {} ({})\n", configuration, plans.value("dataset_name", "?"), plans.value("plans_name", "?"));
    fmt::print("axes                nnU-Net's array axes after transpose_forward {} (a NIfTI file's z, y, x when that is 0, 1, 2)\n",
               plans.at("transpose_forward").dump());
    fmt::print("target spacing      {} mm\n", fmt::join(c.at("spacing").get<std::vector<double>>(), " x "));
    fmt::print("median shape        {} (at the target spacing)\n", by(c.at("median_image_size_in_voxels").get<std::vector<double>>()));
    fmt::print("patch               {}\n", by(c.at("patch_size").get<std::vector<std::int64_t>>()));
    fmt::print("batch size          {}\n", c.at("batch_size").get<int>());
    fmt::print("batch dice          {}\n", c.value("batch_dice", false));
    fmt::print("normalisation       {} (mask: {})\n", fmt::join(c.at("normalization_schemes").get<std::vector<std::string>>(), ", "),
               c.at("use_mask_for_norm").dump());
    fmt::print("network             {}, {} stages, features {}\n", c.at("architecture").at("network_class_name").get<std::string>(),
               a.at("n_stages").get<int>(), a.at("features_per_stage").dump());
    fmt::print("DynUNet kernel_size {}\n", nlohmann::json(kernels).dump());
    fmt::print("DynUNet strides     {}\n", nlohmann::json(strides).dump());
    fmt::print("upsample_kernel_size {}\n", nlohmann::json(upsample).dump());
  } catch (const nlohmann::json::exception& e) {
    throw error_at(where, fmt::format("not an nnU-Net plans file: {}", e.what()));
  }
}

void run_plan(const PlanOptions& o) {
  if (!o.plans.empty()) {  // the view of an existing plans file
    const nlohmann::json plans = read_json(o.plans);
    if (o.json) {
      fmt::print("{}\n", plans.dump(4));
      return;
    }
    print_view(plans, o.configuration, o.plans);
    return;
  }
  if (o.data.empty()) throw UsageError("plan needs --data DATASET (or --plans FILE to show a plan)");
  data::CatalogOptions catalog_options;
  catalog_options.any_labels = true;  // nnU-Net plans any label set
  const data::Catalog cat = data::open_catalog(o.data, catalog_options);
  if (cat.training.empty()) throw error_at(o.data, "no training cases to plan from");
  const prep::PlanDataset dataset = plan_dataset(cat);
  if (!o.patch.empty()) {  // the topology nnU-Net gives a patch of the user's, at the median spacing of the cases
    if (o.patch.size() != 3) throw UsageError("--patch takes three sizes (nnU-Net's axes: z,y,x)");
    for (auto p : o.patch)
      if (p < 1) throw UsageError(fmt::format("--patch {} is out of range: sizes must be at least 1", p));
  }
  const prep::DatasetFingerprint fingerprint = o.fingerprint.empty() ? prep::extract_fingerprint(cat, o.threads)
                                                                     : prep::DatasetFingerprint::from_json(read_json(o.fingerprint), o.fingerprint);
  if (!o.fingerprint.empty() && fingerprint.foreground_intensity_properties_per_channel.size() != dataset.channel_names.size())
    throw error_at(o.fingerprint, fmt::format("{} channels, but {} has {}", fingerprint.foreground_intensity_properties_per_channel.size(), o.data,
                                              dataset.channel_names.size()));
  const nlohmann::ordered_json plans = prep::plan_experiment(fingerprint, dataset);
  if (!o.patch.empty()) {
    const auto& c = plans["configurations"]["3d_fullres"];
    const auto spacing = c["spacing"].get<std::vector<double>>();
    const prep::Topology t = prep::nnunet_topology(spacing, std::vector<double>(o.patch.begin(), o.patch.end()));
    nlohmann::ordered_json j;
    j["spacing"] = spacing;
    j["requested_patch"] = o.patch;
    j["patch_size"] = t.patch_size;
    j["num_pool_per_axis"] = t.num_pool_per_axis;
    j["kernel_sizes"] = t.kernel_sizes;
    j["strides"] = t.strides;
    fmt::print("{}\n", o.json ? j.dump(2) : j.dump());
    return;
  }
  if (!o.out.empty()) {
    const std::filesystem::path out(o.out);
    const auto dir = out.parent_path().empty() ? std::filesystem::path(".") : out.parent_path();
    std::filesystem::create_directories(dir);
    io::write_file_atomic(out, plans.dump(4) + "\n");
    // Beside it, as nnU-Net keeps them in nnUNet_preprocessed/DatasetNNN_Name: its fingerprint and dataset.json.
    io::write_file_atomic(dir / "dataset_fingerprint.json", fingerprint.to_json().dump(4) + "\n");
    const auto dj = cat.root / "dataset.json";
    if (std::filesystem::exists(dj) && !std::filesystem::exists(dir / "dataset.json")) std::filesystem::copy_file(dj, dir / "dataset.json");
    if (!o.quiet) fmt::print("segscale plan: wrote {} and {} (nnU-Net 2.8.1's ExperimentPlanner)\n", out.string(), (dir / "dataset_fingerprint.json").string());
    // And its 5-fold split, as nnU-Net's trainer writes it there at its first run (an existing one is kept, as nnU-Net does).
    const auto splits = dir / "splits_final.json";
    if (std::filesystem::exists(splits)) {
      if (!o.quiet) fmt::print("segscale plan: kept {} (an existing split is used as is)\n", splits.string());
    } else if (cat.training.size() >= 5) {
      std::vector<std::string> keys;
      for (const auto& c : cat.training) keys.push_back(c.key);
      nlohmann::json folds = nlohmann::json::array();
      for (const auto& f : train::nnunet_kfold(keys)) folds.push_back({{"train", f.train}, {"val", f.val}});
      io::write_file_atomic(splits, folds.dump(4) + "\n");
      if (!o.quiet) fmt::print("segscale plan: wrote {} (nnU-Net's 5-fold split; train --fold N --splits it)\n", splits.string());
    }
  }
  if (o.quiet) return;
  if (o.json) {
    fmt::print("{}\n", plans.dump(4));
    return;
  }
  fmt::print("{}: {}\n", o.data, plural(static_cast<std::int64_t>(cat.training.size()), "training case"));
  print_view(nlohmann::json::parse(plans.dump()), o.configuration, o.out.empty() ? o.data : o.out);
}

}  // namespace

void write_nnunet_plan(const std::string& data, const std::string& plans) {
  PlanOptions o;
  o.data = data;
  o.out = plans;
  o.quiet = true;
  run_plan(o);
}

void add_plan_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plan", "nnU-Net's plan for a dataset (nnUNetPlans.json): spacing, patch, batch, network; DynUNet's view");
  auto o = std::make_shared<PlanOptions>();
  cmd->add_option("--data", o->data, "Dataset (nnU-Net's DatasetNNN_Name, MSD dataset.json folder or BraTS case folders)");
  cmd->add_option("--out", o->out, "Write nnU-Net's plans file here (e.g. nnUNetPlans.json), dataset_fingerprint.json beside it");
  cmd->add_option("--fingerprint", o->fingerprint, "Plan from this dataset_fingerprint.json (nnU-Net's or segscale's) instead of reading the images");
  cmd->add_option("--plans", o->plans, "Show this plans file (nnU-Net's or segscale's) instead of planning");
  cmd->add_option("--configuration", o->configuration, "Configuration to show: 3d_fullres, 3d_lowres, 2d, 3d_cascade_fullres")->capture_default_str();
  cmd->add_option("--patch", o->patch, "Topology of this patch instead (z,y,x in nnU-Net's axes) at the plan's spacing")->delimiter(',')->expected(3);
  cmd->add_option("--threads", o->threads, "Threads reading cases (default 0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o->json, "Print the plans file's JSON");
  cmd->callback([o] { run_plan(*o); });
}

}  // namespace segscale::cli
