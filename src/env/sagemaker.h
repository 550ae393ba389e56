#pragma once
// SageMaker's description of the cluster a container runs in. A bring-your-own-container job gets files, not
// variables: /opt/ml/input/config/resourceconfig.json in a Training job, /opt/ml/config/resourceconfig.json in
// a Processing job ({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], ...}). SM_HOSTS and
// SM_CURRENT_HOST, which the Python sagemaker-training-toolkit exports, are honoured first.
#include <filesystem>
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

}  // namespace segscale::env
