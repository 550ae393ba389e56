#pragma once
// One line for a command line that CLI11 rejected: the unknown command or option with the nearest valid name
// ("did you mean `infer`?"), a conflict as "not both", else CLI11's own message on one line.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace segscale::cli {

// The message to print after "segscale: usage error: " for `e`, raised while `app` parsed `args` (argv
// without the program name). Names come from `app`'s own subcommands and options, so they never go stale.
std::string explain_parse_error(const CLI::App& app, const std::vector<std::string>& args, const CLI::ParseError& e);

// Of `candidates`, the one nearest to `word` by edit distance (Levenshtein), if close enough to be a likely
// typo (at most 2 edits, or a third of the word's length); else empty.
std::string nearest_name(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace segscale::cli
