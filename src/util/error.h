#pragma once
// Errors carry the file (or case) they concern and the problem, in one line a user can act on.
#include <stdexcept>
#include <string>

namespace segscale {

// Any failure caused by input data, the file system or the environment. what() is the full message,
// conventionally "<file or case>: <problem>". The CLI prints it and exits 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad command-line usage (conflicting or malformed options). The CLI prints it and exits 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Builds "<where>: <what>".
[[nodiscard]] Error error_at(const std::string& where, const std::string& what);

}  // namespace segscale
