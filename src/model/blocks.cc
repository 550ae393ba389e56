#include "model/blocks.h"

#include <fmt/format.h>

#include <limits>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "util/error.h"

namespace segscale::model {
namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

// Splits MONAI's "NAME" | [NAME, {args}] form.
std::pair<std::string, nlohmann::json> split_args(const nlohmann::json& j, const std::string& where) {
  if (j.is_string()) return {upper(j.get<std::string>()), nlohmann::json::object()};
  if (j.is_array() && j.size() == 2 && j[0].is_string() && j[1].is_object()) return {upper(j[0].get<std::string>()), j[1]};
  throw UsageError(fmt::format("{} must be a name or [name, {{args}}], got {}", where, j.dump()));
}

template <typename T>
T arg(const nlohmann::json& value, const std::string& where, const std::string& key) {
  try {
    return value.get<T>();
  } catch (const nlohmann::json::exception&) {
    throw UsageError(fmt::format("{} argument `{}` has the wrong type: {}", where, key, value.dump()));
  }
}

std::int64_t prod(const Vec3& v) { return v[0] * v[1] * v[2]; }

}  // namespace

nlohmann::json NormSpec::to_json() const {
  nlohmann::json args = nlohmann::json::object();
  const char* name = kind == Kind::Group ? "GROUP" : kind == Kind::Instance ? "INSTANCE" : "BATCH";
  if (kind == Kind::Group) args["num_groups"] = num_groups;
  if (affine != (kind != Kind::Instance)) args["affine"] = affine;
  if (eps != 1e-5) args["eps"] = eps;
  if (kind == Kind::Batch && momentum != 0.1) args["momentum"] = momentum;
  if (args.empty()) return name;
  return nlohmann::json::array({name, args});
}

NormSpec parse_norm(const nlohmann::json& j, const std::string& where) {
  auto [name, args] = split_args(j, where);
  NormSpec s;
  if (name == "GROUP") s.kind = NormSpec::Kind::Group;
  else if (name == "INSTANCE") s.kind = NormSpec::Kind::Instance;
  else if (name == "BATCH") s.kind = NormSpec::Kind::Batch;
  else throw UsageError(fmt::format("{}: unknown normalisation `{}` (GROUP, INSTANCE, BATCH)", where, name));
  s.affine = s.kind != NormSpec::Kind::Instance;
  bool groups_given = false;
  for (const auto& [key, value] : args.items()) {
    if (key == "num_groups" && s.kind == NormSpec::Kind::Group) {
      s.num_groups = arg<int>(value, where, key);
      groups_given = true;
      if (s.num_groups < 1) throw UsageError(fmt::format("{} argument `num_groups` must be positive, got {}", where, s.num_groups));
    } else if (key == "affine") {
      s.affine = arg<bool>(value, where, key);
    } else if (key == "eps") {
      s.eps = arg<double>(value, where, key);
      if (!(s.eps > 0)) throw UsageError(fmt::format("{} argument `eps` must be positive, got {}", where, value.dump()));
    } else if (key == "momentum" && s.kind == NormSpec::Kind::Batch) {
      s.momentum = arg<double>(value, where, key);
      if (!(s.momentum >= 0 && s.momentum <= 1))
        throw UsageError(fmt::format("{} argument `momentum` must be in [0, 1], got {}", where, value.dump()));
    } else {
      throw UsageError(fmt::format("{}: unknown {} argument `{}`", where, name, key));
    }
  }
  if (s.kind == NormSpec::Kind::Group && !groups_given)
    throw UsageError(fmt::format("{}: GROUP needs num_groups, as [\"GROUP\", {{\"num_groups\": 8}}]", where));
  return s;
}

nlohmann::json ActSpec::to_json() const {
  nlohmann::json args{{"inplace", inplace}};
  if (kind == Kind::LeakyRelu) args["negative_slope"] = negative_slope;
  return nlohmann::json::array({kind == Kind::Relu ? "RELU" : "LEAKYRELU", args});
}

ActSpec parse_act(const nlohmann::json& j, const std::string& where) {
  auto [name, args] = split_args(j, where);
  ActSpec s;
  if (name == "RELU") s.kind = ActSpec::Kind::Relu;
  else if (name == "LEAKYRELU") s.kind = ActSpec::Kind::LeakyRelu;
  else throw UsageError(fmt::format("{}: unsupported activation `{}` (RELU, LEAKYRELU)", where, name));
  s.inplace = false;  // torch.nn's default when args do not say
  for (const auto& [key, value] : args.items()) {
    if (key == "inplace") s.inplace = arg<bool>(value, where, key);
    else if (key == "negative_slope" && s.kind == ActSpec::Kind::LeakyRelu) s.negative_slope = arg<double>(value, where, key);
    else throw UsageError(fmt::format("{}: unknown {} argument `{}`", where, name, key));
  }
  return s;
}

torch::Tensor ActSpec::operator()(const torch::Tensor& x) const {
  return kind == Kind::Relu ? torch::relu(x) : torch::leaky_relu(x, negative_slope);
}

Conv make_conv(TreeNetwork& net, const std::string& prefix, const ConvSpec& s) {
  torch::NoGradGuard no_grad;
  const auto& k = s.kernel;
  std::vector<std::int64_t> shape = s.transposed ? std::vector<std::int64_t>{s.in, s.out, k[0], k[1], k[2]}
                                                 : std::vector<std::int64_t>{s.out, s.in, k[0], k[1], k[2]};
  // PyTorch's fan_in: weight.size(1) x kernel volume (for a transposed conv that is its out_channels).
  const double fan_in = static_cast<double>(shape[1] * prod(k));
  const double bound = 1.0 / std::sqrt(fan_in);
  torch::Tensor w;
  switch (s.init) {
    case ConvInit::Torch:
      w = torch::empty(shape).uniform_(-bound, bound);
      break;
    case ConvInit::KaimingNormal:
      w = torch::empty(shape).normal_(0.0, std::sqrt(2.0 / (1.0 + 0.01 * 0.01)) / std::sqrt(fan_in));
      break;
    case ConvInit::Icnr: {  // monai.networks.utils.icnr_init(conv, 2) for a 3D conv, step by step
      const std::int64_t scale = 8, oc2 = s.out / scale;
      torch::Tensor kern = torch::empty({oc2, s.in, k[0], k[1], k[2]}).normal_(0.0, std::sqrt(2.0 / fan_in));
      kern = kern.transpose(0, 1).reshape({oc2, s.in, -1}).repeat({1, 1, scale});
      w = kern.reshape({s.in, s.out, k[0], k[1], k[2]}).transpose(0, 1).contiguous();
      break;
    }
  }
  Conv c{s, net.add_parameter(prefix + ".weight", w), {}};
  if (s.bias) {
    torch::Tensor b = s.init == ConvInit::KaimingNormal ? torch::zeros({s.out}) : torch::empty({s.out}).uniform_(-bound, bound);
    c.bias = net.add_parameter(prefix + ".bias", b);
  }
  return c;
}

torch::Tensor Conv::operator()(const torch::Tensor& x) const {
  const auto& s = spec;
  if (s.transposed)
    return torch::conv_transpose3d(x, weight, bias, s.stride, s.padding, s.output_padding);
  return torch::conv3d(x, weight, bias, s.stride, s.padding);
}

Norm make_norm(TreeNetwork& net, const std::string& prefix, const NormSpec& spec, int channels) {
  if (spec.kind == NormSpec::Kind::Group && channels % spec.num_groups != 0)
    throw UsageError(fmt::format("GROUP norm: num_groups {} does not divide the {} channels of `{}`", spec.num_groups, channels, prefix));
  Norm n{spec, {}, {}, {}, {}, {}};
  if (spec.affine) {
    n.weight = net.add_parameter(prefix + ".weight", torch::ones({channels}));
    n.bias = net.add_parameter(prefix + ".bias", torch::zeros({channels}));
  }
  if (spec.kind == NormSpec::Kind::Batch) {
    n.running_mean = net.add_buffer(prefix + ".running_mean", torch::zeros({channels}));
    n.running_var = net.add_buffer(prefix + ".running_var", torch::ones({channels}));
    n.num_batches_tracked = net.add_buffer(prefix + ".num_batches_tracked", torch::zeros({}, torch::kLong));
  }
  return n;
}

torch::Tensor Norm::operator()(const torch::Tensor& x, bool training) const {
  const bool cudnn = at::globalContext().userEnabledCuDNN();
  switch (spec.kind) {
    case NormSpec::Kind::Group:
      return torch::group_norm(x, spec.num_groups, weight, bias, spec.eps, cudnn);
    case NormSpec::Kind::Instance:
      return torch::instance_norm(x, weight, bias, {}, {}, /*use_input_stats=*/true, spec.momentum, spec.eps, cudnn);
    case NormSpec::Kind::Batch:
      if (training) {
        torch::NoGradGuard no_grad;
        num_batches_tracked.add_(1);
      }
      return torch::batch_norm(x, weight, bias, running_mean, running_var, training, spec.momentum, spec.eps, cudnn);
  }
  return x;
}

Vec3 parse_vec3(const nlohmann::json& j, const std::string& where) {
  if (j.is_number_integer()) {
    const auto v = j.get<std::int64_t>();
    return {v, v, v};
  }
  if (j.is_array() && j.size() == 3 && j[0].is_number_integer() && j[1].is_number_integer() && j[2].is_number_integer())
    return {j[0].get<std::int64_t>(), j[1].get<std::int64_t>(), j[2].get<std::int64_t>()};
  throw UsageError(fmt::format("{} must be an integer or a list of 3 integers, got {}", where, j.dump()));
}

int parse_int(const nlohmann::json& j, const std::string& where, int min) {
  if (!j.is_number_integer() || j.get<std::int64_t>() < min || j.get<std::int64_t>() > std::numeric_limits<int>::max())
    throw UsageError(fmt::format("{} must be a whole number >= {}, got {}", where, min, j.dump()));
  return j.get<int>();
}

std::vector<int> parse_ints(const nlohmann::json& j, const std::string& where, int min) {
  if (!j.is_array()) throw UsageError(fmt::format("{} must be a list of whole numbers >= {}, got {}", where, min, j.dump()));
  std::vector<int> v;
  for (std::size_t i = 0; i < j.size(); ++i) v.push_back(parse_int(j[i], fmt::format("{}[{}]", where, i), min));
  return v;
}

nlohmann::json vec3_json(const Vec3& v) {
  if (v[0] == v[1] && v[1] == v[2]) return v[0];
  return nlohmann::json::array({v[0], v[1], v[2]});
}

}  // namespace segscale::model
