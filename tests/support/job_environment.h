#pragma once
// A JobEnvironment holding exactly the given variables and no /opt/ml files (unless a test writes them).
#include <map>
#include <string>

#include "env/job_environment.h"

namespace segscale::testing {

inline env::JobEnvironment vars(std::map<std::string, std::string> v) {
  env::JobEnvironment e;
  e.vars = std::move(v);
  e.sagemaker_root.clear();
  return e;
}

}  // namespace segscale::testing
