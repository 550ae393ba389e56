#pragma once
// The one place a failing command reports itself: one line on stderr, "segscale: <message>", and inside a
// SageMaker Training job also /opt/ml/output/failure, whose first 1,024 characters become the job's
// FailureReason in the console and DescribeTrainingJob.
#include <string>

namespace segscale::cli {

// Prints (unless `print` is false: the message was printed already) and records `message`; returns `code`.
int fail(const std::string& message, int code, bool print = true);

}  // namespace segscale::cli
