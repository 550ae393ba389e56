#include "cli/usage_error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace segscale::cli {
namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool looks_like_number(const std::string& s) {
  return s.size() > 1 && s[0] == '-' && (std::isdigit(static_cast<unsigned char>(s[1])) || s[1] == '.');
}

std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "; ";
    else out += c;
  }
  return out;
}

std::vector<std::string> option_names(const CLI::App& cmd) {
  std::vector<std::string> names;
  for (const CLI::Option* o : cmd.get_options()) {
    for (const auto& n : o->get_lnames()) names.push_back("--" + n);
    for (const auto& n : o->get_snames()) names.push_back("-" + n);
  }
  return names;
}

std::string hint(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string best = nearest_name(word, candidates);
  return best.empty() ? std::string() : fmt::format("; did you mean `{}`?", best);
}

}  // namespace

std::string nearest_name(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best_d <= std::max<std::size_t>(2, word.size() / 3) ? best : std::string();
}

std::string explain_parse_error(const CLI::App& app, const std::vector<std::string>& args, const CLI::ParseError& e) {
  // The command: the first word that is not an option of the top level.
  const CLI::App* cmd = nullptr;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    if (!args[i].empty() && args[i][0] == '-') continue;
    std::vector<std::string> commands;
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) commands.push_back(s->get_name());
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; }))
      if (s->get_name() == args[i]) cmd = s;
    if (!cmd)
      return fmt::format("unknown command `{}`{} (segscale --help lists the commands)", args[i], hint(args[i], commands));
    ++i;
    break;
  }
  if (cmd) {
    const std::vector<std::string> names = option_names(*cmd);
    for (; i < args.size() && args[i] != "--"; ++i) {
      const std::string& a = args[i];
      if (a.size() < 2 || a[0] != '-' || looks_like_number(a)) continue;
      const std::string name = a.substr(0, a.find('='));
      if (std::find(names.begin(), names.end(), name) != names.end()) continue;
      return fmt::format("{}: unknown option `{}`{} (segscale {} --help lists its options)", cmd->get_name(), name, hint(name, names),
                         cmd->get_name());
    }
  } else if (dynamic_cast<const CLI::RequiredError*>(&e)) {
    return "a command is required (segscale --help lists the commands)";
  }
  const std::string where = cmd ? cmd->get_name() + ": " : std::string();
  if (dynamic_cast<const CLI::ExcludesError*>(&e)) return fmt::format("{}{}: give one or the other, not both", where, one_line(e.what()));
  return where + one_line(e.what());
}

}  // namespace segscale::cli
