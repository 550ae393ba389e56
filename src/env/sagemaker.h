#pragma once
// SageMaker's description of the cluster a container runs in. A bring-your-own-container job gets files, not
// variables: /opt/ml/input/config/resourceconfig.json in a Training job, /opt/ml/config/resourceconfig.json in
// a Processing job ({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], ...}). SM_HOSTS and
// SM_CURRENT_HOST, which the Python sagemaker-training-toolkit exports, are honoured first.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "env/job_environment.h"

namespace segscale::env {

enum class SageMakerJob { kTraining, kProcessing };

struct SageMakerHosts {
  std::vector<std::string> hosts;  // in SageMaker's order; hosts[0] is the master
  std::string current_host;
  int index = 0;                   // position of current_host in hosts
  std::string source;              // "SM_HOSTS" or the file read, for logs and errors
};

// The resourceconfig.json path of that kind of job under env.sagemaker_root.
std::filesystem::path sagemaker_resource_config(const JobEnvironment& env, SageMakerJob job);

// From SM_HOSTS + SM_CURRENT_HOST, else from the job's resourceconfig.json, else nullopt. Throws UsageError
// naming the variable or file when it is malformed or the current host is not among the hosts.
std::optional<SageMakerHosts> sagemaker_hosts(const JobEnvironment& env, SageMakerJob job);

// What a SageMaker Training job hands a bring-your-own-container program (the files under /opt/ml), as
// segscale uses it. Paths are under env.sagemaker_root.
struct SageMakerTraining {
  SageMakerHosts hosts;
  std::map<std::string, std::string> hyperparameters;  // hyperparameters.json: every value a string
  std::map<std::string, std::filesystem::path> channels;  // input/data/<channel>/ for each channel
  std::filesystem::path model_dir;       // model/: what SageMaker uploads as the model artefact
  std::filesystem::path checkpoint_dir;  // checkpoints/: synced to S3, restored after a spot interruption
  std::filesystem::path failure_file;    // output/failure: its first 1,024 characters become FailureReason
  int gpus_per_host = 0;                 // SM_NUM_GPUS, else the NVIDIA devices the driver lists, else 0
};

// A Training job's description when this process runs inside one (input/config/resourceconfig.json
// exists), else nullopt. Throws UsageError naming the file for a malformed hyperparameters.json or
// inputdataconfig.json.
std::optional<SageMakerTraining> sagemaker_training(const JobEnvironment& env);

// Where a failing process should write its one-line reason: output/failure of a Training job, nullopt outside one.
std::optional<std::filesystem::path> sagemaker_failure_file(const JobEnvironment& env);

// Inside a Processing job (config/processingjobconfig.json), the name of the input that is distributed
// ShardedByS3Key and whose LocalPath holds `path` (or is inside it), else nullopt. Such an instance sees only
// some of the input's objects. Throws UsageError naming the file when it is malformed.
std::optional<std::string> sagemaker_sharded_input(const JobEnvironment& env, const std::filesystem::path& path);

}  // namespace segscale::env
