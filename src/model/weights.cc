#include "model/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <set>

#include "io/file.h"
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

void load_weights(Network& model, const std::filesystem::path& path) {
  const std::string where = path.string();
  auto raw = io::read_file(path);
  c10::IValue v;
  try {
    v = torch::pickle_load(std::vector<char>(raw.begin(), raw.end()));
  } catch (const c10::Error& e) {
    throw error_at(where, std::string("not a torch.save file: ") + e.what_without_backtrace());
  }
  if (!v.isGenericDict()) throw error_at(where, "expected a dict of name -> tensor (torch.save(dict(model.state_dict())))");
  auto dict = v.toGenericDict();
  std::map<std::string, at::Tensor> found;
  for (const auto& kv : dict) {
    if (!kv.key().isString() || !kv.value().isTensor()) throw error_at(where, "expected a dict of name -> tensor");
    found[kv.key().toStringRef()] = kv.value().toTensor();
  }
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
