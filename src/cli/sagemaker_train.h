#pragma once
// `docker run IMAGE train` inside a SageMaker Training job: SageMaker passes no options, only files under
// /opt/ml. This turns `segscale train [flags]` into the full command: options from hyperparameters.json (the
// flag names, with or without dashes, '_' or '-'; "true"/"false" for switches; keys starting with
// "sagemaker_" are the SDK's own and ignored), --store (or --data) from the "train"/"training" channel (or the
// only channel), --val-store from a "validation"/"val" channel holding a store, --out /opt/ml/model,
// --checkpoint-dir /opt/ml/checkpoints with --auto-resume, --device cuda when GPUs are present, and, for more
// than one host or GPU, `segscale launch` over hosts x GPUs (master: the first host). Flags given on the
// command line win over hyperparameters. libtorch-free.
#include <optional>
#include <string>
#include <vector>

#include "env/job_environment.h"

namespace segscale::cli {

// The argv to run instead of `argv`, or nullopt when argv is not `segscale train ...` or no Training job is
// present. Throws UsageError naming the file for malformed job files or a job without an input channel.
std::optional<std::vector<std::string>> sagemaker_train_argv(const env::JobEnvironment& env, const std::vector<std::string>& argv);

}  // namespace segscale::cli
