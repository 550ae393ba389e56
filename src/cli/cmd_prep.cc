// segscale prep: preprocess a dataset into a sample store (see src/prep/prep.h).
#include <fmt/format.h>

#include "cli/commands.h"
#include "env/sagemaker.h"
#include "env/share.h"
#include "prep/prep.h"
#include "store/store.h"
#include "util/error.h"
#include "util/plural.h"

namespace segscale::cli {

void add_prep_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("prep", "Preprocess a dataset into a sharded, checksummed sample store");
  cmd->footer(label_map_help());
  auto o = std::make_shared<prep::PrepOptions>();
  auto shard = std::make_shared<std::string>();
  auto shard_count = std::make_shared<int>(0);
  auto finalize = std::make_shared<std::string>();
  auto shard_mib = std::make_shared<std::uint64_t>(1024);
  cmd->add_option("--data", o->data, "Dataset folder (MSD dataset.json or BraTS case folders)");
  cmd->add_option("--out", o->out, "Store folder (shared by all shares)");
  auto* cache = cmd->add_flag("--cache", o->cache, "Store the deterministic stage once per case; the loader augments online (recommended)");
  auto* copies = cmd->add_option("--copies", o->copies, "Store N augmented copies per case (the case study's mode, N=100)")
                     ->check(CLI::PositiveNumber);
  cache->excludes(copies);
  cmd->add_option("--plans", o->plans, "nnU-Net's plans file (segscale plan --out, or nnU-Net's own): store nnU-Net's preprocessed cases "
                                       "(for train --recipe nnunet) instead of a transform chain's");
  cmd->add_option("--configuration", o->configuration, "The plans file's configuration for --plans")->capture_default_str();
  cmd->add_option("--dataset-json", o->dataset_json, "dataset.json for --plans (default: the one beside the plans file, else the dataset's)");
  cmd->add_option("--workers", o->workers, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed of the copies")->capture_default_str();
  cmd->add_option("--pipeline", o->pipeline, "Pipeline description (JSON); default: the case study's chain");
  cmd->add_option("--label-map", o->label_map, "Label-map preset (blog, msd, brats21, brats23); default from the dataset");
  cmd->add_option("--dtype", o->image_dtype, "Image dtype in the store")->check(CLI::IsMember({"float16", "float32"}))->capture_default_str();
  cmd->add_option("--shard", *shard, "Only this share of the work, I/N (default: from Slurm, Open MPI, Kubernetes or SageMaker variables, else 0/1)");
  cmd->add_option("--shard-count", *shard_count, "Share count for a Kubernetes Indexed Job (JOB_COMPLETION_INDEX gives only the index)");
  cmd->add_option("--shard-size", *shard_mib, "Target size of a store shard, MiB")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--skip-bad", o->skip_bad, "Record a case that fails in the manifest and go on (default: stop)");
  cmd->add_flag("--quiet", o->quiet, "No progress bar");
  cmd->add_option("--finalize", *finalize, "Only write STORE's index and manifest (after all shares finished)");
  cmd->callback([=] {
    if (!finalize->empty()) {
      // --finalize only merges what the shares wrote: options that would shape a store have nothing to act on.
      for (const char* name : {"--data", "--out", "--cache", "--copies", "--seed", "--pipeline", "--label-map", "--dtype", "--plans", "--configuration", "--dataset-json",
                               "--shard", "--shard-count", "--shard-size", "--skip-bad"})
        if (cmd->count(name) > 0) throw UsageError(fmt::format("--finalize STORE takes no {} (it only merges the shares' sidecars): not both", name));
      auto m = store::finalize_store(*finalize);
      fmt::print("finalised {}: {} in {}, {:.1f} MB\n", *finalize, plural(m["counts"]["samples"].get<std::int64_t>(), "sample"),
                 plural(m["counts"]["shards"].get<std::int64_t>(), "shard"), m["counts"]["bytes"].get<double>() / 1e6);
      return;
    }
    if (o->data.empty() || o->out.empty()) throw UsageError("prep needs --data DATASET and --out STORE (or --finalize STORE)");
    // ShardedByS3Key hands each instance a subset of the objects: a case's modality and label files can land on
    // different instances. FullyReplicated input with prep's own shares gives the same parallelism safely.
    if (auto input = env::sagemaker_sharded_input(env::JobEnvironment::from_process(), o->data))
      throw UsageError(fmt::format("{}: SageMaker input '{}' is distributed ShardedByS3Key, so this instance sees only some of each case's "
                                   "files; use S3DataDistributionType=FullyReplicated: each instance then prepares only its share of the "
                                   "shards (from resourceconfig.json), and the store is the same as one machine's",
                                   o->data.string(), *input));
    if (!shard->empty()) {
      o->share = env::parse_share(*shard);
    } else if (auto s = env::share_from_job(env::JobEnvironment::from_process(),
                                            *shard_count > 0 ? std::optional<int>(*shard_count) : std::nullopt)) {
      o->share = *s;
    }
    o->shard_bytes = *shard_mib << 20;
    auto r = prep::run_prep(*o);
    fmt::print("prep share {}/{} ({}): {} written{}, {} already done, {} of {} in this share; {}, {}, {:.1f} MB in {:.1f} s\n",
               o->share.index, o->share.count, o->share.source, plural(r.shards_written, "shard"),
               r.shards_repaired ? fmt::format(" ({} damaged, redone)", r.shards_repaired) : std::string(), r.shards_already_done,
               r.shards_in_share, r.shards_total, plural(static_cast<std::int64_t>(r.cases), "case"),
               plural(static_cast<std::int64_t>(r.samples), "sample"), static_cast<double>(r.bytes) / 1e6, r.seconds);
    if (r.finalized)
      fmt::print("store complete: {}, {} -> {}\n", plural(r.manifest["counts"]["samples"].get<std::int64_t>(), "sample"),
                 plural(static_cast<std::int64_t>(r.manifest["skipped"].size()), "skipped case"), o->out.string());
    else
      fmt::print("store not complete yet: other shares still to run (the last one finalises, or run segscale prep --finalize {})\n",
                 o->out.string());
  });
}

void add_verify_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("verify", "Check every checksum, count and shape of a sample store");
  auto path = std::make_shared<std::string>();
  cmd->add_option("store", *path, "Store folder")->required();
  cmd->callback([=] {
    auto problems = store::verify_store(*path);
    for (const auto& p : problems) fmt::print(stderr, "{}\n", p);
    if (!problems.empty())
      throw Error(fmt::format("{}: {} found; rerun the same segscale prep command to repair it (damaged shards are redone, the rest kept)",
                              *path, plural(static_cast<std::int64_t>(problems.size()), "problem")));
    store::StoreReader r(*path);
    fmt::print("{}: OK, {} in {}, every checksum matches\n", *path, plural(static_cast<std::int64_t>(r.samples().size()), "sample"),
               plural(r.manifest()["counts"]["shards"].get<std::int64_t>(), "shard"));
  });
}

}  // namespace segscale::cli
