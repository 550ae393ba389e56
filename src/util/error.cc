#include "util/error.h"

namespace segscale {

Error error_at(const std::string& where, const std::string& what) { return Error(where + ": " + what); }

}  // namespace segscale
