#pragma once
// `docker run IMAGE train` inside a SageMaker Training job: SageMaker passes no options, only files under
// /opt/ml. In SageMaker mode this turns `segscale train [flags]` into the full command: options from
// hyperparameters.json (the flag names, with or without dashes, '_' or '-'; "true"/"false" for switches; keys
// starting with "sagemaker_" are the SDK's own and ignored), --store (or --data) from the "train"/"training"
// channel (or the only channel), --val-store from a "validation"/"val" channel holding a store, --out
// /opt/ml/model, --checkpoint-dir /opt/ml/checkpoints with --auto-resume, --device cuda when GPUs are present,
// and, for more than one host or GPU, `segscale launch` over hosts x GPUs (master: the first host). Flags given
// on the command line win over hyperparameters. libtorch-free.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "env/job_environment.h"

namespace segscale::cli {

// Whether `segscale train` runs in SageMaker mode, and why (one line for the log).
struct SageMakerMode {
  bool on = false;
  std::filesystem::path failure_file;  // in SageMaker mode: output/failure under the SageMaker root
  std::string why;                     // empty when argv is not `segscale train` or there is nothing to say
};

// SageMaker mode is on with an explicit --sagemaker, or when a Training job's
// <root>/input/config/resourceconfig.json exists (root: /opt/ml, or $SEGSCALE_OPT_ML) and the command line
// gives none of --store, --data, --out (the job's entry point); explicit options win over a leftover /opt/ml.
// Throws UsageError for --sagemaker outside a Training job.
SageMakerMode sagemaker_mode(const env::JobEnvironment& env, const std::vector<std::string>& argv);

// In SageMaker mode, the argv to run instead of `argv` (with --sagemaker, so launched workers stay in the
// mode); nullopt otherwise. `train`, when given, is the train subcommand: hyperparameters are checked against
// its options first. Throws UsageError naming the file for malformed job files or a job without an input
// channel, and naming hyperparameters.json and the key for a hyperparameter that is not an option
// ("hyperparameter `learning_rate`: unknown; did you mean `lr`?") or whose value does not fit it ("`batch`:
// `two` is not an integer").
std::optional<std::vector<std::string>> sagemaker_train_argv(const env::JobEnvironment& env, const std::vector<std::string>& argv,
                                                             const CLI::App* train = nullptr);

}  // namespace segscale::cli
