#pragma once
// Whole-file reads and crash-safe writes. Every error names the path and the OS reason.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "util/default_init.h"

namespace segscale::io {

// A byte buffer whose resize() does not zero-fill: file contents and inflated data overwrite it at once.
using Bytes = UninitVector<std::uint8_t>;

// Reads the whole file. Throws Error("<path>: <reason>") if it cannot be opened or read.
Bytes read_file(const std::filesystem::path& path);

// Writes `data` to `path` so that readers see either the old file or the complete new one, never a
// partial one: write to a unique temporary name in the same directory, fsync, rename over `path`, fsync
// the directory. On failure the temporary is removed, any existing `path` is untouched, and Error is thrown.
void write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> data);
void write_file_atomic(const std::filesystem::path& path, const std::string& text);

// A name for a temporary beside `name`: "." NAME ".tmp." then what makes it unique among every process that
// shares the folder (pid, a random number drawn once per process for writers on other machines of a shared file
// system, a counter). remove_leftovers and the tests recognise temporaries by the ".tmp." in it.
std::string temp_name(const std::string& name);

// True if `path` ends with `suffix` (case-sensitive), e.g. has_suffix(p, ".nii.gz").
bool has_suffix(const std::filesystem::path& path, const std::string& suffix);

}  // namespace segscale::io
