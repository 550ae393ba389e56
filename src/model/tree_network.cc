#include "model/tree_network.h"

namespace segscale::model {
namespace {

class Node : public torch::nn::Module {};

}  // namespace

torch::nn::Module& TreeNetwork::node_for(const std::string& name, std::string& leaf) {
  torch::nn::Module* m = this;
  std::size_t start = 0;
  for (std::size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1) {
    const std::string part = name.substr(start, dot - start);
    torch::nn::Module* next = nullptr;
    for (auto& item : m->named_children())
      if (item.key() == part) next = item.value().get();
    m = next ? next : m->register_module(part, std::make_shared<Node>()).get();
  }
  leaf = name.substr(start);
  return *m;
}

torch::Tensor TreeNetwork::add_parameter(const std::string& name, torch::Tensor t) {
  std::string leaf;
  return node_for(name, leaf).register_parameter(leaf, std::move(t));
}

torch::Tensor TreeNetwork::add_buffer(const std::string& name, torch::Tensor t) {
  std::string leaf;
  torch::Tensor b = node_for(name, leaf).register_buffer(leaf, std::move(t));
  if (!b.is_floating_point()) integer_buffers_.emplace_back(b, b.scalar_type());
  return b;
}

void TreeNetwork::add_alias_prefix(const std::string& alias, const std::string& prefix) {
  auto add = [&](const std::string& name) {
    if (name.rfind(prefix + ".", 0) == 0) aliases_.emplace_back(alias + name.substr(prefix.size()), name);
  };
  // MONAI's state_dict order: each module's own parameters, then its own buffers, then its children.
  // (named_modules without the root: it needs a shared_ptr to the root, which does not exist while constructing.)
  for (const auto& p : named_parameters(false)) add(p.key());
  for (const auto& b : named_buffers(false)) add(b.key());
  for (const auto& m : named_modules("", /*include_self=*/false)) {
    for (const auto& p : m.value()->named_parameters(false)) add(m.key() + "." + p.key());
    for (const auto& b : m.value()->named_buffers(false)) add(m.key() + "." + b.key());
  }
}

void TreeNetwork::restore_integer_buffers() {
  torch::NoGradGuard no_grad;
  for (auto& [t, dtype] : integer_buffers_)
    if (t.scalar_type() != dtype) t.set_data(t.to(dtype));
}

void TreeNetwork::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(device, dtype, non_blocking);
  restore_integer_buffers();
}

void TreeNetwork::to(torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(dtype, non_blocking);
  restore_integer_buffers();
}

}  // namespace segscale::model
