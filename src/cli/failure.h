#pragma once
// The one place a failing command reports itself: one line on stderr, "segscale: <message>"; in SageMaker mode
// (see cli/sagemaker_train.h) also /opt/ml/output/failure, whose first 1,024 characters become the job's
// FailureReason in the console and DescribeTrainingJob; under torchrun also its TORCHELASTIC_ERROR_FILE, whose
// message torchrun prints in its failure summary. A stop on request (kExitStopped) is not a failure: it is
// printed, never recorded.
#include <filesystem>
#include <optional>
#include <string>

namespace segscale::cli {

// Where fail() records failures besides stderr: the SageMaker failure file in SageMaker mode, else nothing
// (the default). Set once by main before the command runs.
void record_failures_in(std::optional<std::filesystem::path> sagemaker_failure_file);

// Prints (unless `print` is false: the message was printed already) and records `message`; returns `code`.
int fail(const std::string& message, int code, bool print = true);

}  // namespace segscale::cli
