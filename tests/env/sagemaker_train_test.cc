#include "cli/sagemaker_train.h"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <optional>

#include "../support/temp_dir.h"
#include "env/sagemaker.h"
#include "util/error.h"

namespace segscale::cli {
namespace {

namespace fs = std::filesystem;
using segscale::testing::expect_error_containing;

// A SageMaker Training job's /opt/ml as the platform lays it out for a bring-your-own container.
struct OptMl {
  segscale::testing::TempDir dir;
  env::JobEnvironment env;
  explicit OptMl(const std::string& resourceconfig = R"({"current_host": "algo-1", "hosts": ["algo-1"]})") {
    fs::create_directories(dir.path() / "input" / "config");
    write("input/config/resourceconfig.json", resourceconfig);
    env.sagemaker_root = dir.path();
  }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((dir.path() / rel).parent_path());
    std::ofstream(dir.path() / rel) << text;
  }
  std::string path(const std::string& rel) const { return (dir.path() / rel).string(); }
};

std::vector<std::string> args(std::initializer_list<const char*> a) { return {a.begin(), a.end()}; }

TEST(SageMakerTrain, OutsideAJobNothingChanges) {
  env::JobEnvironment none;
  none.sagemaker_root.clear();
  EXPECT_FALSE(sagemaker_train_argv(none, args({"segscale", "train", "--store", "s"})).has_value());
  OptMl job;
  EXPECT_FALSE(sagemaker_train_argv(job.env, args({"segscale", "prep", "--data", "d"})).has_value());
}

TEST(SageMakerTrain, HyperparametersChannelsAndFolders) {
  OptMl job;
  // As the SageMaker Python SDK writes them: every value a JSON-encoded string, plus its own keys.
  job.write("input/config/hyperparameters.json",
            R"({"epochs": "40", "max_steps": "100", "--lr": "0.001", "amp": "true", "amsgrad": "false", "amp-dtype": "\"bf16\"",
                "sagemaker_program": "train", "sagemaker_region": "\"eu-west-1\""})");
  job.write("input/config/inputdataconfig.json", R"({"train": {"TrainingInputMode": "File"}, "validation": {"TrainingInputMode": "File"}})");
  job.write("input/data/train/manifest.json", "{}");
  job.write("input/data/validation/manifest.json", "{}");
  auto a = sagemaker_train_argv(job.env, args({"segscale", "train", "--epochs", "3"}));
  ASSERT_TRUE(a.has_value());
  const std::string joined = fmt::format("{}", fmt::join(*a, " "));
  EXPECT_EQ((*a)[0], "segscale");
  EXPECT_EQ((*a)[1], "train");
  EXPECT_NE(joined.find("--epochs 3"), std::string::npos) << joined;  // the command line wins
  EXPECT_EQ(joined.find("--epochs 40"), std::string::npos) << joined;
  EXPECT_NE(joined.find("--max-steps 100"), std::string::npos) << joined;
  EXPECT_NE(joined.find("--lr 0.001"), std::string::npos) << joined;
  EXPECT_NE(joined.find("--amp "), std::string::npos) << joined;
  EXPECT_EQ(joined.find("--amsgrad"), std::string::npos) << joined;
  EXPECT_NE(joined.find("--amp-dtype bf16"), std::string::npos) << joined;
  EXPECT_EQ(joined.find("sagemaker_"), std::string::npos) << joined;  // the SDK's own keys are not options
  EXPECT_NE(joined.find("--sagemaker"), std::string::npos) << joined;  // a launched worker stays in SageMaker mode
  EXPECT_NE(joined.find("--store " + job.path("input/data/train")), std::string::npos) << joined;
  EXPECT_NE(joined.find("--val-store " + job.path("input/data/validation")), std::string::npos) << joined;
  EXPECT_NE(joined.find("--out " + job.path("model")), std::string::npos) << joined;
  EXPECT_NE(joined.find("--checkpoint-dir " + job.path("checkpoints")), std::string::npos) << joined;
  EXPECT_NE(joined.find("--auto-resume"), std::string::npos) << joined;
}

TEST(SageMakerTrain, RawDatasetChannelAndOnlyChannel) {
  OptMl job;
  job.write("input/data/brats/dataset.json", "{}");  // not a store: a dataset, transforms on the fly
  auto a = sagemaker_train_argv(job.env, args({"segscale", "train"}));
  const std::string joined = fmt::format("{}", fmt::join(*a, " "));
  EXPECT_NE(joined.find("--data " + job.path("input/data/brats")), std::string::npos) << joined;
}

TEST(SageMakerTrain, SeveralHostsOrGpusGoThroughLaunch) {
  OptMl job(R"({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]})");
  job.write("input/data/train/manifest.json", "{}");
  job.env.vars["SM_NUM_GPUS"] = "4";
  auto a = sagemaker_train_argv(job.env, args({"/usr/bin/segscale", "train"}));
  const std::string joined = fmt::format("{}", fmt::join(*a, " "));
  EXPECT_EQ(joined.rfind("/usr/bin/segscale launch --nproc-per-node 4 --nnodes 2 --node-rank 1 --master-addr algo-1 --master-port 29500 -- segscale train", 0), 0u)
      << joined;
  EXPECT_NE(joined.find("--device cuda"), std::string::npos) << joined;
  // A launched worker (RANK set) trains itself, and completing its already complete command adds nothing.
  job.env.vars["RANK"] = "5";
  std::vector<std::string> worker(std::find(a->begin(), a->end(), "--") + 1, a->end());
  auto w = sagemaker_train_argv(job.env, worker);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(*w, worker);
}

TEST(SageMakerTrain, ErrorsNameTheFile) {
  OptMl job;
  expect_error_containing([&] { sagemaker_train_argv(job.env, args({"segscale", "train"})); }, {"no input channel", "channels: none"});
  job.write("input/data/a/x", "");
  job.write("input/data/b/x", "");
  expect_error_containing([&] { sagemaker_train_argv(job.env, args({"segscale", "train"})); }, {"channels: a, b"});
  job.write("input/config/hyperparameters.json", "{\"epochs\": ");
  expect_error_containing([&] { sagemaker_train_argv(job.env, args({"segscale", "train"})); }, {"hyperparameters.json", "malformed JSON"});
  job.write("input/config/hyperparameters.json", R"({"nproc_per_node": "many"})");
  job.write("input/data/train/manifest.json", "{}");
  expect_error_containing([&] { sagemaker_train_argv(job.env, args({"segscale", "train"})); }, {"hyperparameters.json", "hyperparameter `nproc_per_node`: `many` is not a whole number"});
}

TEST(SageMakerTrain, ModeOnlyAsTheJobsEntryPointOrAsked) {
  OptMl job;
  job.write("input/data/train/manifest.json", "{}");
  EXPECT_TRUE(sagemaker_mode(job.env, args({"segscale", "train"})).on);
  EXPECT_TRUE(sagemaker_mode(job.env, args({"segscale", "train", "--epochs", "2"})).on);
  EXPECT_NE(sagemaker_mode(job.env, args({"segscale", "train"})).why.find("SageMaker mode: on"), std::string::npos);
  EXPECT_EQ(sagemaker_mode(job.env, args({"segscale", "train"})).failure_file, job.dir.path() / "output" / "failure");
  // A leftover /opt/ml does not take over a command that names its data: explicit options win, and the log says so.
  for (const char* flag : {"--store", "--data", "--out"}) {
    const auto m = sagemaker_mode(job.env, args({"segscale", "train", flag, "x"}));
    EXPECT_FALSE(m.on) << flag;
    EXPECT_NE(m.why.find(std::string("SageMaker mode: off (") + flag), std::string::npos) << m.why;
    EXPECT_FALSE(sagemaker_train_argv(job.env, args({"segscale", "train", flag, "x"})).has_value()) << flag;
  }
  EXPECT_FALSE(sagemaker_mode(job.env, args({"segscale", "train", "--out=x"})).on);
  // --sagemaker asks for it anyway; the explicit --store still wins over the channel.
  auto a = sagemaker_train_argv(job.env, args({"segscale", "train", "--sagemaker", "--store", "mine"}));
  ASSERT_TRUE(a.has_value());
  const std::string joined = fmt::format("{}", fmt::join(*a, " "));
  EXPECT_NE(joined.find("--store mine"), std::string::npos) << joined;
  EXPECT_EQ(joined.find("input/data/train"), std::string::npos) << joined;
  EXPECT_NE(joined.find("--out " + job.path("model")), std::string::npos) << joined;
  // Outside SageMaker: nothing to say, and --sagemaker is refused naming the file it looked for.
  env::JobEnvironment none;
  none.sagemaker_root = job.dir.path() / "nowhere";
  EXPECT_EQ(sagemaker_mode(none, args({"segscale", "train", "--store", "s"})).why, "");
  expect_error_containing([&] { sagemaker_mode(none, args({"segscale", "train", "--sagemaker"})); },
                          {"--sagemaker", "no SageMaker Training job", "nowhere/input/config/resourceconfig.json"});
  EXPECT_FALSE(sagemaker_mode(job.env, args({"segscale", "prep"})).on);
}

TEST(SageMakerTrain, HyperparameterErrorsNameTheFileAndKey) {
  CLI::App app;
  auto* train = app.add_subcommand("train");
  int batch = 2;
  double lr = 1e-4;
  bool quiet = false;
  std::vector<int> channels;
  std::optional<std::int64_t> max_steps;
  train->add_option("--batch", batch);
  train->add_option("--lr", lr);
  train->add_flag("--quiet", quiet);
  train->add_option("--channels", channels)->delimiter(',');
  train->add_option("--max-steps", max_steps);
  OptMl job;
  job.write("input/data/train/manifest.json", "{}");
  auto error_for = [&](const std::string& hyper) {
    job.write("input/config/hyperparameters.json", hyper);
    try {
      sagemaker_train_argv(job.env, args({"segscale", "train"}), train);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string file = job.path("input/config/hyperparameters.json");
  EXPECT_EQ(error_for(R"({"learning_rate": "0.1"})"), file + ": hyperparameter `learning_rate`: unknown; did you mean `lr`?");
  EXPECT_EQ(error_for(R"({"max_stesp": "3"})"), file + ": hyperparameter `max_stesp`: unknown; did you mean `max_steps`?");
  EXPECT_EQ(error_for(R"({"colour": "red"})"), file + ": hyperparameter `colour`: unknown; segscale train --help lists the options");
  EXPECT_EQ(error_for(R"({"batch": "two"})"), file + ": hyperparameter `batch`: `two` is not an integer");
  EXPECT_EQ(error_for(R"({"lr": "fast"})"), file + ": hyperparameter `lr`: `fast` is not a number");
  EXPECT_EQ(error_for(R"({"quiet": "yes"})"), file + ": hyperparameter `quiet`: `yes` is not true or false");
  EXPECT_EQ(error_for(R"({"channels": "4,x,16"})"), file + ": hyperparameter `channels`: `4,x,16` is not an integer");
  EXPECT_EQ(error_for(R"({"max_steps": "1.5"})"), file + ": hyperparameter `max_steps`: `1.5` is not an integer");
  EXPECT_EQ(error_for(R"({"batch": 4, "lr": "0.01", "quiet": "True", "channels": "\"4,8,16\"", "max-steps": "7"})"), "no error");
}

TEST(SageMakerTrain, FailureFileOnlyInATrainingJob) {
  OptMl job;
  EXPECT_EQ(*env::sagemaker_failure_file(job.env), job.dir.path() / "output" / "failure");
  env::JobEnvironment none;
  none.sagemaker_root = job.dir.path() / "nowhere";
  EXPECT_FALSE(env::sagemaker_failure_file(none).has_value());
}

}  // namespace
}  // namespace segscale::cli
