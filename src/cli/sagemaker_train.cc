#include "cli/sagemaker_train.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "env/sagemaker.h"
#include "util/error.h"

namespace segscale::cli {
namespace fs = std::filesystem;

namespace {

// "max_steps", "--max-steps", "max-steps" -> "--max-steps".
std::string flag_name(std::string key) {
  key.erase(0, key.find_first_not_of('-'));
  std::replace(key.begin(), key.end(), '_', '-');
  return "--" + key;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

const fs::path* find_channel(const env::SageMakerTraining& job, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto it = job.channels.find(n); it != job.channels.end()) return &it->second;
  return nullptr;
}

bool is_store(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "manifest.json", ec) || fs::exists(dir / "settings.json", ec);
}

}  // namespace

std::optional<std::vector<std::string>> sagemaker_train_argv(const env::JobEnvironment& env, const std::vector<std::string>& argv) {
  if (argv.size() < 2 || argv[1] != "train") return std::nullopt;
  auto job = env::sagemaker_training(env);
  if (!job) return std::nullopt;

  std::set<std::string> given;  // flags on the command line win
  for (std::size_t i = 2; i < argv.size(); ++i)
    if (argv[i].rfind("--", 0) == 0) given.insert(argv[i].substr(0, argv[i].find('=')));
  std::vector<std::string> flags;
  std::optional<int> nproc;
  for (const auto& [key, value] : job->hyperparameters) {
    if (key.rfind("sagemaker_", 0) == 0 || key.empty()) continue;
    const std::string flag = flag_name(key);
    if (flag == "--nproc-per-node") {
      try {
        nproc = std::stoi(value);
      } catch (const std::exception&) {
        throw UsageError(fmt::format("{}: hyperparameter nproc-per-node='{}' is not an integer",
                                     (env.sagemaker_root / "input/config/hyperparameters.json").string(), value));
      }
      continue;
    }
    if (given.count(flag)) continue;
    given.insert(flag);
    const std::string v = lower(value);
    if (v == "true") flags.push_back(flag);
    else if (v != "false") flags.insert(flags.end(), {flag, value});
  }
  if (!given.count("--store") && !given.count("--data")) {
    const fs::path* ch = find_channel(*job, {"train", "training"});
    if (!ch && job->channels.size() == 1) ch = &job->channels.begin()->second;
    if (!ch) {
      std::vector<std::string> names;
      for (const auto& c : job->channels) names.push_back(c.first);
      throw UsageError(fmt::format("SageMaker training job ({}): no input channel named train or training (channels: {}); give the store as "
                                   "a 'train' channel or a store hyperparameter",
                                   env.sagemaker_root.string(), names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
    }
    flags.insert(flags.end(), {is_store(*ch) ? "--store" : "--data", ch->string()});
  }
  if (!given.count("--val-store"))
    if (const fs::path* v = find_channel(*job, {"validation", "val"}); v && is_store(*v)) flags.insert(flags.end(), {"--val-store", v->string()});
  if (!given.count("--out")) flags.insert(flags.end(), {"--out", job->model_dir.string()});
  if (!given.count("--checkpoint-dir")) flags.insert(flags.end(), {"--checkpoint-dir", job->checkpoint_dir.string()});
  if (!given.count("--resume") && !given.count("--overwrite") && !given.count("--auto-resume")) flags.push_back("--auto-resume");
  if (!given.count("--device") && job->gpus_per_host > 0) flags.insert(flags.end(), {"--device", "cuda"});

  std::vector<std::string> train{"segscale", "train"};
  train.insert(train.end(), argv.begin() + 2, argv.end());
  train.insert(train.end(), flags.begin(), flags.end());
  const int procs = std::max(1, nproc.value_or(job->gpus_per_host));
  const int hosts = static_cast<int>(job->hosts.hosts.size());
  if (env.get("RANK") || (procs == 1 && hosts == 1)) {  // one process, or already a launched worker
    train[0] = argv[0];
    return train;
  }
  std::vector<std::string> launch{argv[0], "launch", "--nproc-per-node", std::to_string(procs), "--nnodes", std::to_string(hosts),
                                  "--node-rank", std::to_string(job->hosts.index), "--master-addr", job->hosts.hosts[0],
                                  "--master-port", env.get("MASTER_PORT") ? *env.get("MASTER_PORT") : "29500", "--"};
  launch.insert(launch.end(), train.begin(), train.end());
  return launch;
}

}  // namespace segscale::cli
