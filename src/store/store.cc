#include "store/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <cerrno>
#include <cstring>

#include "io/json_file.h"
#include "io/npy.h"
#include "io/tar.h"
#include "segscale/version.h"
#include "storage/storage.h"
#include "util/crc32c.h"
#include "util/error.h"

namespace segscale::store {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kRepairHint = "rerun the same segscale prep command to repair the store";

json read_json(storage::Storage& st, const std::string& name) {
  if (!st.exists(name)) throw error_at(st.where(name), "missing (is this a segscale store? a finalised one has manifest.json and index.json)");
  const io::Bytes bytes = st.read(name);
  try {
    return json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    throw error_at(st.where(name), std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace

std::uint32_t Settings::shard_count() const {
  return static_cast<std::uint32_t>((cases.size() + cases_per_shard - 1) / cases_per_shard);
}

std::vector<std::string> Settings::cases_of(std::uint32_t shard) const {
  std::size_t b = static_cast<std::size_t>(shard) * cases_per_shard;
  std::size_t e = std::min(cases.size(), b + cases_per_shard);
  return {cases.begin() + static_cast<std::ptrdiff_t>(b), cases.begin() + static_cast<std::ptrdiff_t>(e)};
}

Settings read_settings(const fs::path& store) {
  Settings s;
  auto st = storage::open_storage(store.string());
  const std::string p = st->where("settings.json");
  s.json = read_json(*st, "settings.json");
  try {
    s.cases = s.json.at("cases").get<std::vector<std::string>>();
    s.cases_per_shard = s.json.at("cases_per_shard").get<std::uint32_t>();
  } catch (const json::exception& e) {
    throw error_at(p, std::string("malformed settings: ") + e.what());
  }
  if (s.cases_per_shard == 0) throw error_at(p, "cases_per_shard must be positive");
  return s;
}

namespace {

bool any_sidecar(storage::Storage& st) {
  for (const auto& n : st.list("shard-"))
    if (n.ends_with(".idx.json")) return true;
  return false;
}

std::string brief(const json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

// "/pipeline/transforms/2/roi" -> "pipeline.transforms.2.roi"
std::string setting_name(const std::string& pointer) {
  if (pointer.empty()) return "the whole file";
  std::string s = pointer.substr(1);
  std::replace(s.begin(), s.end(), '/', '.');
  return s;
}

}  // namespace

void write_or_check_settings(const fs::path& store, const json& j) {
  auto st = storage::open_storage(store.string());
  const std::string p = "settings.json";
  if (st->exists(p)) {
    json have;
    try {
      have = read_json(*st, p);
    } catch (const Error&) {
      if (any_sidecar(*st)) throw;
      have = json();  // unreadable and nothing committed yet: replaced below
    }
    if (have == j) return;
    // A store without a committed shard holds nothing made with its settings (e.g. a prep that failed on its
    // first case): the new settings replace them.
    if (any_sidecar(*st)) {
      const json patch = json::diff(have, j);
      const std::string ptr = patch.empty() ? "" : patch[0].at("path").get<std::string>();
      const json::json_pointer jp(ptr);
      const std::string was = have.contains(jp) ? brief(have.at(jp)) : "(absent)";
      const std::string now = j.contains(jp) ? brief(j.at(jp)) : "(absent)";
      throw error_at(st->where(p), fmt::format("this store was made with other settings: {} is {} in the store but {} in this run; "
                                               "write to a new --out folder, or rerun with the original options",
                                               setting_name(ptr), was, now));
    }
  }
  st->write_atomic(p, j.dump(2) + "\n");
}

std::vector<std::uint32_t> missing_shards(const fs::path& store, const Settings& s) {
  std::vector<std::uint32_t> out;
  auto st = storage::open_storage(store.string());
  const auto names = st->list("shard-");  // one listing instead of two lookups per shard
  auto has = [&](const std::string& n) { return std::binary_search(names.begin(), names.end(), n); };
  for (std::uint32_t i = 0; i < s.shard_count(); ++i)
    if (!has(sidecar_file(i)) || !has(shard_file(i))) out.push_back(i);
  return out;
}

json finalize_store(const fs::path& store) {
  Settings s = read_settings(store);
  auto missing = missing_shards(store, s);
  if (!missing.empty()) {
    std::string names;
    for (std::size_t i = 0; i < std::min<std::size_t>(missing.size(), 5); ++i) names += (i ? ", " : "") + shard_file(missing[i]);
    throw error_at(store.string(), fmt::format("cannot finalise: {} of {} shards not written yet ({}{}); run the remaining shares first",
                                               missing.size(), s.shard_count(), names, missing.size() > 5 ? ", ..." : ""));
  }
  auto st = storage::open_storage(store.string());
  json samples = json::array(), skipped = json::array(), shards = json::array();
  std::uint64_t bytes = 0;
  for (std::uint32_t i = 0; i < s.shard_count(); ++i) {
    json side = read_json(*st, sidecar_file(i));
    for (auto& x : side.at("samples")) samples.push_back(x);
    for (auto& x : side.at("skipped")) skipped.push_back(x);
    shards.push_back({{"file", shard_file(i)}, {"bytes", side.at("bytes")}, {"samples", side.at("samples").size()}});
    bytes += side.at("bytes").get<std::uint64_t>();
  }
  json index{{"format_version", kFormatVersion}, {"samples", samples}};
  st->write_atomic("index.json", index.dump() + "\n");
  json manifest;
  manifest["format_version"] = kFormatVersion;
  manifest["tool"] = std::string("segscale ") + kVersion;
  manifest["settings"] = s.json;
  manifest["counts"] = {{"cases", s.cases.size()}, {"cases_written", s.cases.size() - skipped.size()}, {"samples", samples.size()},
                        {"shards", s.shard_count()}, {"bytes", bytes}};
  manifest["skipped"] = skipped;
  manifest["shards"] = shards;
  st->write_atomic("manifest.json", manifest.dump(2) + "\n");
  // What killed writers left (temporary files, unfinished S3 uploads): with every shard committed no shard
  // writer is left, but another finaliser may be (two shares that finish together both finalise, with the same
  // result): its index and manifest temporaries are kept.
  st->remove_leftovers({"index.json", "manifest.json"});
  return manifest;
}

namespace {

// A dataset folder, by the marks open_catalog looks for: dataset.json, MSD's imagesTr/, or case folders holding
// NIfTI files (only the first few folders are looked into).
bool looks_like_dataset(storage::Storage& st, const fs::path& dir) {
  if (st.exists("dataset.json")) return true;
  if (!st.is_local()) return false;
  std::error_code ec;
  if (fs::is_directory(dir / "imagesTr", ec)) return true;
  int folders = 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory(ec) || ++folders > 20) continue;
    for (const auto& f : fs::directory_iterator(e.path(), ec))
      if (f.path().filename().string().ends_with(".nii.gz") || f.path().filename().string().ends_with(".nii")) return true;
  }
  return false;
}

}  // namespace

StoreReader::StoreReader(const fs::path& store) : dir_(store), storage_(storage::open_storage(store.string())) {
  if (storage_->is_local()) {
    std::error_code ec;
    if (!fs::exists(store, ec)) throw error_at(store.string(), "no such folder");
    if (!fs::is_directory(store, ec)) throw error_at(store.string(), "not a folder (a sample store is the folder segscale prep --out wrote)");
  }
  if (!storage_->exists("manifest.json")) {
    if (looks_like_dataset(*storage_, store))
      throw error_at(storage_->root(), fmt::format("this is a dataset, not a sample store: run `segscale prep --data {} --out STORE --cache` "
                                                   "first, or use --data",
                                                   storage_->root()));
    if (storage_->exists("settings.json"))
      throw error_at(storage_->root(), fmt::format("an unfinished sample store (settings.json but no manifest.json): run its remaining prep "
                                                   "shares, or segscale prep --finalize {} once they have all finished",
                                                   storage_->root()));
  }
  manifest_ = read_json(*storage_, "manifest.json");
  json index = read_json(*storage_, "index.json");
  const std::string where = storage_->where("index.json");
  if (!index.contains("samples") || !index["samples"].is_array()) throw error_at(where, "missing \"samples\" list");
  for (const auto& j : index["samples"]) samples_.push_back(sample_from_json(j, where));
}

StoreReader::~StoreReader() = default;

StoreReader::Raw StoreReader::read(std::size_t i, bool check_crc) const {
  Raw r;
  read_into(i, r, check_crc);
  return r;
}

io::Bytes StoreReader::read_json_member(std::size_t i) const {
  const SampleRef& s = samples_.at(i);
  io::Bytes b;
  try {
    b = storage_->read_range(shard_file(s.shard), s.json.offset, s.json.size);
  } catch (const Error& e) {
    throw Error(fmt::format("{} (sample {}): truncated shard; {}", e.what(), s.key, kRepairHint));
  }
  if (const std::uint32_t c = crc32c(b.data(), b.size()); c != s.json.crc32c)
    throw error_at(storage_->where(shard_file(s.shard)), fmt::format("member {}.json: CRC-32C mismatch (index {:08x}, data {:08x}): corrupt "
                                                                     "sample; {}", s.key, s.json.crc32c, c, kRepairHint));
  return b;
}

void StoreReader::read_into(std::size_t i, Raw& r, bool check_crc) const {
  const SampleRef& s = samples_.at(i);
  const std::uint64_t begin = std::min({s.json.offset, s.image.offset, s.label.offset});
  const std::uint64_t end = std::max({s.json.offset + s.json.size, s.image.offset + s.image.size, s.label.offset + s.label.size});
  r.json = r.image = r.label = {};
  try {
    storage_->read_range_into(shard_file(s.shard), begin, end - begin, r.buffer);
  } catch (const Error& e) {
    throw Error(fmt::format("{} (sample {}): truncated shard; {}", e.what(), s.key, kRepairHint));
  }
  auto view = [&](const MemberRef& m, const char* suffix) {
    std::span<const std::uint8_t> v(r.buffer.data() + (m.offset - begin), m.size);
    if (check_crc) {
      std::uint32_t c = crc32c(v.data(), v.size());
      if (c != m.crc32c)
        throw error_at(storage_->where(shard_file(s.shard)),
                       fmt::format("member {}.{}: CRC-32C mismatch (index {:08x}, data {:08x}): corrupt sample; {}", s.key, suffix, m.crc32c,
                                   c, kRepairHint));
    }
    return v;
  };
  r.json = view(s.json, "json");
  r.image = view(s.image, "image.npy");
  r.label = view(s.label, "label.npy");
}

namespace {

using ExpectedMember = std::pair<std::string, MemberRef>;  // tar member name, where the index puts it

void expect_sample(std::vector<ExpectedMember>& want, const SampleRef& s) {
  want.push_back({s.key + ".json", s.json});
  want.push_back({s.key + ".image.npy", s.image});
  want.push_back({s.key + ".label.npy", s.label});
}

// Walks shard `sh` member by member against `want`, in order.
std::vector<std::string> check_shard(storage::Storage& st, std::uint32_t sh, const std::vector<ExpectedMember>& want) {
  std::vector<std::string> problems;
  const std::string name = shard_file(sh);
  io::Bytes data;
  try {
    data = st.read(name);
  } catch (const Error& e) {
    problems.push_back(e.what());
    return problems;
  }
  std::size_t pos = 0, k = 0;
  for (;;) {
    if (pos + io::kTarBlock > data.size()) {
      problems.push_back(fmt::format("{}: truncated at byte {} (no end-of-archive marker)", name, data.size()));
      break;
    }
    io::TarMember mem;
    bool more;
    try {
      more = io::parse_tar_header({data.data() + pos, io::kTarBlock}, fmt::format("{}: header at byte {}", name, pos), mem);
    } catch (const Error& e) {
      problems.push_back(e.what());
      break;
    }
    if (!more) break;
    const std::size_t off = pos + io::kTarBlock;
    if (k >= want.size()) {
      problems.push_back(fmt::format("{}: member {} is not in the index", name, mem.name));
      break;
    }
    const auto& [wname, ref] = want[k];
    if (mem.name != wname || ref.offset != off || ref.size != mem.size) {
      problems.push_back(fmt::format("{}: member {} at byte {} ({} bytes) but the index expects {} at byte {} ({} bytes)", name, mem.name, off,
                                     mem.size, wname, ref.offset, ref.size));
      break;
    }
    if (off + mem.size > data.size()) {
      problems.push_back(fmt::format("{}: member {} truncated ({} of {} bytes present)", name, mem.name, data.size() - off, mem.size));
      break;
    }
    const std::uint32_t c = crc32c(data.data() + off, mem.size);
    if (c != ref.crc32c)
      problems.push_back(fmt::format("{}: member {}: CRC-32C mismatch (index {:08x}, data {:08x})", name, mem.name, ref.crc32c, c));
    else if (mem.name.ends_with(".npy")) {
      try {
        io::parse_npy_header({data.data() + off, mem.size}, name + ": member " + mem.name);
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
    pos = off + mem.size + io::tar_padding(mem.size);
    ++k;
  }
  if (k < want.size()) problems.push_back(fmt::format("{}: {} of {} indexed members missing", name, want.size() - k, want.size()));
  return problems;
}

}  // namespace

std::vector<std::string> shard_problems(const fs::path& store, std::uint32_t shard) {
  auto st = storage::open_storage(store.string());
  const std::string side_name = sidecar_file(shard);
  std::vector<ExpectedMember> want;
  std::uint64_t bytes = 0;
  try {
    const io::Bytes raw = st->read(side_name);
    const json side = json::parse(raw.begin(), raw.end());
    for (const auto& j : side.at("samples")) expect_sample(want, sample_from_json(j, st->where(side_name)));
    bytes = side.at("bytes").get<std::uint64_t>();
  } catch (const json::exception& e) {
    return {fmt::format("{}: malformed sidecar: {}", st->where(side_name), e.what())};
  } catch (const Error& e) {
    return {e.what()};
  }
  const auto size = st->size(shard_file(shard));
  if (!size) return {fmt::format("{}: missing", st->where(shard_file(shard)))};
  if (*size != bytes) return {fmt::format("{}: {} bytes but its sidecar says {}", shard_file(shard), *size, bytes)};
  return check_shard(*st, shard, want);
}

std::vector<std::string> verify_store(const fs::path& store) {
  std::vector<std::string> problems;
  StoreReader reader(store);  // manifest and index must at least parse
  const auto& samples = reader.samples();
  const json& m = reader.manifest();
  if (m.value("/counts/samples"_json_pointer, std::uint64_t{0}) != samples.size())
    problems.push_back(fmt::format("manifest.json: counts.samples {} but index.json lists {}", m["counts"]["samples"].dump(), samples.size()));
  // Expected members per shard, in order.
  std::map<std::uint32_t, std::vector<ExpectedMember>> expected;
  for (const auto& s : samples) expect_sample(expected[s.shard], s);
  std::uint32_t shard_total = m.value("/counts/shards"_json_pointer, 0u);
  for (std::uint32_t sh = 0; sh < shard_total; ++sh) {
    auto found = check_shard(reader.storage(), sh, expected[sh]);
    problems.insert(problems.end(), found.begin(), found.end());
  }
  return problems;
}

}  // namespace segscale::store
