#include "model/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <map>
#include <set>

#include "io/file.h"
#include "model/torch_save_file.h"
#include "util/error.h"

namespace segscale::model {

void save_weights(Network& model, const std::filesystem::path& path) {
  c10::Dict<std::string, at::Tensor> dict;
  torch::NoGradGuard no_grad;
  auto put = [&](const std::string& name, const torch::Tensor& t) {
    torch::Tensor v = t.detach().to(torch::kCPU);
    if (v.is_floating_point()) v = v.to(torch::kFloat32);
    dict.insert(name, v.contiguous());
  };
  // MONAI's state_dict order: each module's own parameters, then its own buffers, then its children; then the
  // second names MONAI's module tree gives some tensors (DynUNet's skip_layers.*).
  std::map<std::string, torch::Tensor> by_name;
  auto put_own = [&](torch::nn::Module& m, const std::string& base) {
    for (const auto& item : m.named_parameters(false)) put(base + item.key(), by_name[base + item.key()] = item.value());
    for (const auto& item : m.named_buffers(false)) put(base + item.key(), by_name[base + item.key()] = item.value());
  };
  put_own(model, "");
  for (const auto& m : model.named_modules("", /*include_self=*/false)) put_own(*m.value(), m.key() + ".");
  for (const auto& [alias, name] : model.state_dict_aliases()) put(alias, by_name.at(name));
  std::vector<char> bytes = torch::pickle_save(dict);
  io::write_file_atomic(path, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

namespace {

at::ScalarType storage_dtype(const std::string& storage_type, const std::string& where) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"FloatStorage", at::kFloat}, {"DoubleStorage", at::kDouble}, {"HalfStorage", at::kHalf}, {"BFloat16Storage", at::kBFloat16},
      {"LongStorage", at::kLong},   {"IntStorage", at::kInt},       {"ShortStorage", at::kShort}, {"CharStorage", at::kChar},
      {"ByteStorage", at::kByte},   {"BoolStorage", at::kBool}};
  const auto it = kTypes.find(storage_type);
  if (it == kTypes.end()) throw error_at(where, fmt::format("tensors of torch.{} are not weights segscale reads", storage_type));
  return it->second;
}

// The file's name -> tensor dict (model/torch_save_file.h: libtorch's own unpickler cannot read an OrderedDict).
std::map<std::string, at::Tensor> read_tensors(const std::vector<char>& bytes, const std::string& where) {
  std::map<std::string, at::Tensor> found;
  for (const auto& [name, t] : read_state_dict_entries(bytes, where)) {
    const at::ScalarType dtype = storage_dtype(t.storage_type, where);
    const std::string_view data = t.data;
    const auto elem = static_cast<std::size_t>(c10::elementSize(dtype));
    at::Tensor storage = torch::empty({static_cast<std::int64_t>(data.size() / elem)}, torch::TensorOptions().dtype(dtype));
    std::memcpy(storage.data_ptr(), data.data(), storage.numel() * elem);  // a copy: entries need not be aligned
    std::int64_t last = t.offset;  // the furthest element the view reaches
    for (std::size_t d = 0; d < t.sizes.size() && d < t.strides.size(); ++d) last += t.sizes[d] > 0 ? (t.sizes[d] - 1) * t.strides[d] : 0;
    if (t.sizes.size() != t.strides.size() || t.offset < 0 || last >= std::max<std::int64_t>(storage.numel(), 1))
      throw error_at(where, fmt::format("tensor {}: its view runs past its storage {}", name, t.record));
    found[name] = storage.as_strided(t.sizes, t.strides, t.offset).clone();
  }
  return found;
}

}  // namespace

void load_weights(Network& model, const std::filesystem::path& path) {
  const std::string where = path.string();
  auto raw = io::read_file(path);
  std::vector<char> bytes(raw.begin(), raw.end());
  const TorchSaveKind kind = torch_save_kind(bytes);
  if (kind == TorchSaveKind::kScriptArchive)
    throw error_at(where, "a segscale checkpoint (the training state, not a weights file): give the run's model.pt or last.pt, or continue "
                          "that run with `segscale train --resume`");
  if (kind == TorchSaveKind::kNotZip)
    throw error_at(where, "not a torch.save zip file (a legacy torch.save(..., _use_new_zipfile_serialization=False) file? save it "
                          "again with torch.save's defaults)");
  const std::map<std::string, at::Tensor> found = read_tensors(bytes, where);
  std::vector<std::string> missing, bad_shape;
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  auto state = model.named_parameters();
  for (const auto& item : model.named_buffers()) state.insert(item.key(), item.value());
  for (auto& item : state) {
    auto it = found.find(item.key());
    if (it == found.end()) {
      missing.push_back(item.key());
      continue;
    }
    if (it->second.sizes() != item.value().sizes()) {
      bad_shape.push_back(fmt::format("{} (file {}, model {})", item.key(), fmt::join(it->second.sizes(), "x"), fmt::join(item.value().sizes(), "x")));
      continue;
    }
    item.value().copy_(it->second);
    used.insert(item.key());
  }
  // Aliases (DynUNet's skip_layers.*) name tensors already loaded above: accepted when their shape fits, not required.
  for (const auto& [alias, name] : model.state_dict_aliases()) {
    auto it = found.find(alias);
    if (it == found.end() || !state.contains(name)) continue;
    if (it->second.sizes() != state[name].sizes())
      bad_shape.push_back(fmt::format("{} (file {}, model {})", alias, fmt::join(it->second.sizes(), "x"), fmt::join(state[name].sizes(), "x")));
    else
      used.insert(alias);
  }
  std::vector<std::string> unexpected;
  for (auto& [k, t] : found)
    if (!used.count(k) && std::find(missing.begin(), missing.end(), k) == missing.end()) {
      bool shape_problem = false;
      for (auto& b : bad_shape) shape_problem |= b.rfind(k + " ", 0) == 0;
      if (!shape_problem) unexpected.push_back(k);
    }
  if (!missing.empty() || !bad_shape.empty() || !unexpected.empty()) {
    auto head = [](const std::vector<std::string>& v) {
      std::string s;
      for (std::size_t i = 0; i < std::min<std::size_t>(v.size(), 3); ++i) s += (i ? ", " : "") + v[i];
      return s + (v.size() > 3 ? fmt::format(", ... ({} in all)", v.size()) : "");
    };
    std::string msg = "weights do not fit this network (model and its settings as in training?):";
    if (!missing.empty()) msg += " missing " + head(missing) + ";";
    if (!bad_shape.empty()) msg += " wrong shape " + head(bad_shape) + ";";
    if (!unexpected.empty()) msg += " unexpected " + head(unexpected) + ";";
    msg.pop_back();
    throw error_at(where, msg);
  }
}

}  // namespace segscale::model
