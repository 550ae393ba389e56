#pragma once
// The facts a scheduler gives a process about the job it belongs to: its environment variables and, inside a
// SageMaker container, the JSON files under /opt/ml. Read once, then passed by value: nothing else in segscale
// reads the process environment for "who am I in this job" (tests build their own). libtorch-free.
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace segscale::env {

struct JobEnvironment {
  std::map<std::string, std::string> vars;
  // SageMaker's root folder: /opt/ml, or $SEGSCALE_OPT_ML (tests). Its config files are read only if present.
  std::filesystem::path sagemaker_root = "/opt/ml";

  // The variables of this process; sagemaker_root from SEGSCALE_OPT_ML when set.
  static JobEnvironment from_process();

  // The value of `name`, or nullptr when unset or empty (schedulers leave some variables empty).
  const std::string* get(const std::string& name) const;
  // The integer value of `name`, or nullopt when unset. Throws UsageError naming the variable when the value
  // is not an integer.
  std::optional<int> get_int(const std::string& name) const;
};

// Parses a whole-string decimal integer; throws UsageError "<what>='<text>' is not an integer".
int parse_int(const std::string& text, const std::string& what);

}  // namespace segscale::env
