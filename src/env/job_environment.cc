#include "env/job_environment.h"

#include <fmt/format.h>

#include "util/error.h"

extern char** environ;

namespace segscale::env {

JobEnvironment JobEnvironment::from_process() {
  JobEnvironment e;
  for (char** p = environ; p && *p; ++p) {
    std::string kv(*p);
    auto eq = kv.find('=');
    if (eq != std::string::npos) e.vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (auto root = e.get("SEGSCALE_OPT_ML")) e.sagemaker_root = *root;
  return e;
}

const std::string* JobEnvironment::get(const std::string& name) const {
  auto it = vars.find(name);
  return it == vars.end() || it->second.empty() ? nullptr : &it->second;
}

std::optional<int> JobEnvironment::get_int(const std::string& name) const {
  const std::string* v = get(name);
  if (!v) return std::nullopt;
  return parse_int(*v, "environment variable " + name);
}

int parse_int(const std::string& text, const std::string& what) {
  try {
    std::size_t used = 0;
    int x = std::stoi(text, &used);
    if (used == text.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError(fmt::format("{}='{}' is not an integer", what, text));
}

}  // namespace segscale::env
