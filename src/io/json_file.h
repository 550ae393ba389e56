#pragma once
// Reading a JSON file with errors that name it. libtorch-free.
#include <filesystem>

#include <nlohmann/json.hpp>

namespace segscale::io {

// Reads and parses the whole file. Throws Error("<path>: <reason>") if it cannot be read and
// Error("<path>: malformed JSON: <parser's message>") if it does not parse.
nlohmann::json read_json_file(const std::filesystem::path& path);
// The same, keeping the file's key order (dataset.json's labels are ordered).
nlohmann::ordered_json read_ordered_json_file(const std::filesystem::path& path);

}  // namespace segscale::io
