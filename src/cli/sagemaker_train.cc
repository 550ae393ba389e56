#include "cli/sagemaker_train.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "cli/usage_error.h"
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

// "--max-steps" -> "max_steps": how a hyperparameter names it.
std::string key_name(const std::string& flag) {
  std::string k = flag.substr(flag.find_first_not_of('-'));
  std::replace(k.begin(), k.end(), '-', '_');
  return k;
}

// The option a hyperparameter probably meant: the names other trainers use (Hugging Face, Lightning, the
// SageMaker examples), else the nearest option name within a few edits; empty when none is close.
std::string suggestion(const std::string& key, const CLI::App& train) {
  static const std::map<std::string, std::string> kOtherNames = {
      {"learning_rate", "lr"}, {"learning-rate", "lr"}, {"batch_size", "batch"}, {"train_batch_size", "batch"},
      {"per_device_train_batch_size", "batch"}, {"num_epochs", "epochs"}, {"num_train_epochs", "epochs"}, {"max_epochs", "epochs"},
      {"epoch", "epochs"}, {"num_steps", "max_steps"}, {"steps", "max_steps"}, {"workers", "loader_threads"},
      {"num_workers", "loader_threads"}, {"fp16", "amp"}, {"bf16", "amp"}, {"mixed_precision", "amp"}};
  std::string k = lower(key);
  k.erase(0, k.find_first_not_of('-'));
  if (auto it = kOtherNames.find(k); it != kOtherNames.end()) return it->second;
  std::replace(k.begin(), k.end(), '-', '_');
  std::vector<std::string> names;
  for (const CLI::Option* opt : train.get_options())
    for (const std::string& name : opt->get_lnames()) names.push_back(key_name(name));
  return nearest_name(k, names);
}

bool whole_number(const std::string& s, bool allow_negative) {
  std::size_t i = (allow_negative && !s.empty() && s[0] == '-') ? 1 : 0;
  return i < s.size() && std::all_of(s.begin() + static_cast<long>(i), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool real_number(const std::string& s) {
  try {
    std::size_t used = 0;
    (void)std::stod(s, &used);
    return used == s.size();
  } catch (const std::exception&) {
    return false;
  }
}

// Checks one hyperparameter against the train option it becomes; throws UsageError naming the file and key.
void check_hyperparameter(const std::string& key, const std::string& value, const CLI::App& train, const fs::path& file) {
  const CLI::Option* opt = train.get_option_no_throw(flag_name(key));
  if (!opt || flag_name(key) == "--sagemaker" || flag_name(key) == "--help") {
    const std::string s = suggestion(key, train);
    throw UsageError(fmt::format("{}: hyperparameter `{}`: unknown; {}", file.string(), key,
                                 s.empty() ? "segscale train --help lists the options" : fmt::format("did you mean `{}`?", s)));
  }
  if (opt->get_expected_max() == 0) {  // a switch
    if (lower(value) != "true" && lower(value) != "false")
      throw UsageError(fmt::format("{}: hyperparameter `{}`: `{}` is not true or false", file.string(), key, value));
    return;
  }
  const std::string type = opt->get_type_name();
  const bool is_int = type.rfind("INT", 0) == 0, is_uint = type.rfind("UINT", 0) == 0, is_float = type.rfind("FLOAT", 0) == 0;
  if (!is_int && !is_uint && !is_float) return;
  std::size_t start = 0;
  for (;;) {  // lists ("4,8,16") are checked item by item
    const std::size_t comma = value.find(',', start);
    const std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const bool ok = is_float ? real_number(item) : whole_number(item, is_int);
    if (!ok)
      throw UsageError(fmt::format("{}: hyperparameter `{}`: `{}` is not {}", file.string(), key, value,
                                   is_float ? "a number" : is_uint ? "a whole number (0 or more)" : "an integer"));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
}

bool has_flag(const std::vector<std::string>& argv, const std::string& flag) {
  return std::any_of(argv.begin(), argv.end(), [&](const std::string& a) { return a == flag || a.rfind(flag + "=", 0) == 0; });
}

}  // namespace

SageMakerMode sagemaker_mode(const env::JobEnvironment& env, const std::vector<std::string>& argv) {
  SageMakerMode m;
  if (argv.size() < 2 || argv[1] != "train") return m;
  const fs::path config = env::sagemaker_resource_config(env, env::SageMakerJob::kTraining);
  std::error_code ec;
  const bool job = !env.sagemaker_root.empty() && fs::is_regular_file(config, ec);
  const bool asked = has_flag(argv, "--sagemaker");
  if (asked && !job)
    throw UsageError(fmt::format("--sagemaker: no SageMaker Training job here ({} does not exist; SEGSCALE_OPT_ML names another root)",
                                 config.string()));
  std::vector<std::string> explicit_data;
  for (const char* f : {"--store", "--data", "--out"})
    if (has_flag(argv, f)) explicit_data.push_back(f);
  if (asked) {
    m.why = fmt::format("SageMaker mode: on (--sagemaker; job files under {})", env.sagemaker_root.string());
  } else if (!job) {
    return m;  // nothing to say outside SageMaker
  } else if (!explicit_data.empty()) {
    m.why = fmt::format("SageMaker mode: off ({} given on the command line; the job files under {} are not used, --sagemaker would use them)",
                        fmt::join(explicit_data, ", "), env.sagemaker_root.string());
    return m;
  } else {
    m.why = fmt::format("SageMaker mode: on (a Training job's {} and no --store, --data or --out)", config.string());
  }
  m.on = true;
  m.failure_file = env.sagemaker_root / "output" / "failure";
  return m;
}

std::optional<std::vector<std::string>> sagemaker_train_argv(const env::JobEnvironment& env, const std::vector<std::string>& argv,
                                                             const CLI::App* train_cmd) {
  if (!sagemaker_mode(env, argv).on) return std::nullopt;
  auto job = env::sagemaker_training(env);
  if (!job) return std::nullopt;
  const fs::path hyper_file = env.sagemaker_root / "input" / "config" / "hyperparameters.json";

  std::set<std::string> given;  // flags on the command line win
  for (std::size_t i = 2; i < argv.size(); ++i)
    if (argv[i].rfind("--", 0) == 0) given.insert(argv[i].substr(0, argv[i].find('=')));
  std::vector<std::string> flags;
  std::optional<int> nproc;
  for (const auto& [key, value] : job->hyperparameters) {
    if (key.rfind("sagemaker_", 0) == 0 || key.empty()) continue;
    const std::string flag = flag_name(key);
    if (flag == "--nproc-per-node") {
      if (!whole_number(value, false) || value.size() > 6)
        throw UsageError(fmt::format("{}: hyperparameter `{}`: `{}` is not a whole number", hyper_file.string(), key, value));
      nproc = std::stoi(value);
      continue;
    }
    if (train_cmd) check_hyperparameter(key, value, *train_cmd, hyper_file);
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
  if (!given.count("--sagemaker")) flags.push_back("--sagemaker");  // launched workers stay in SageMaker mode

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
