// make_network for SegResNet and DynUNet: config round trips, bad settings as UsageError naming the key, the
// deep-supervision contract of forward_train, dtype changes keeping integer buffers, and weights files carrying
// BatchNorm statistics and DynUNet's alias names both ways. (Parity with MONAI: tests/oracle/test_models_monai.py.)
#include <gtest/gtest.h>

#include <filesystem>

#include "model/network.h"
#include "model/nnunet_loss.h"
#include "transforms/nnunet_targets.h"
#include "model/weights.h"
#include "util/error.h"

using namespace segscale;
using nlohmann::json;

namespace {

std::filesystem::path temp_file(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("segscale_networks_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir / name;
}

const json kSegResNet = {{"name", "segresnet"}, {"init_filters", 8}, {"in_channels", 2}, {"out_channels", 3},
                         {"blocks_down", {1, 1, 1}}, {"blocks_up", {1, 1}}, {"norm", "BATCH"}};
const json kDynUNet = {{"name", "dynunet"}, {"in_channels", 2}, {"out_channels", 3},
                       {"kernel_size", {{3, 3, 1}, 3, 3}}, {"strides", {1, {2, 2, 1}, 2}}, {"filters", {4, 8, 16}},
                       {"deep_supervision", true}, {"res_block", true}};

std::string usage_message(const json& config) {
  try {
    model::make_network(config);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}

}  // namespace

TEST(Networks, ConfigRoundTrips) {
  for (const json& c : {kSegResNet, kDynUNet, json{{"name", "segresnet"}}}) {
    auto net = model::make_network(c);
    const json written = net->config();
    EXPECT_EQ(model::make_network(written)->config(), written) << written.dump();
    for (const auto& [key, value] : c.items()) EXPECT_TRUE(written.contains(key)) << key;
  }
  EXPECT_EQ(model::make_network({{"name", "segresnet"}})->config()["norm"], json::parse(R"(["GROUP", {"num_groups": 8}])"));
}

TEST(Networks, BadSettingsAreUsageErrorsNamingTheKey) {
  auto with = [](json c, const std::string& key, json value) {
    c[key] = std::move(value);
    return c;
  };
  EXPECT_NE(usage_message(with(kSegResNet, "blocks_upp", json::array())).find("`blocks_upp`"), std::string::npos);
  EXPECT_NE(usage_message(with(kSegResNet, "blocks_up", {1})).find("`blocks_up`"), std::string::npos);
  EXPECT_NE(usage_message(with(kSegResNet, "init_filters", "8")).find("`init_filters`"), std::string::npos);
  EXPECT_NE(usage_message(with(kSegResNet, "dropout_prob", 1.5)).find("`dropout_prob`"), std::string::npos);
  EXPECT_NE(usage_message(with(kSegResNet, "norm", "LAYER")).find("`norm`"), std::string::npos);
  EXPECT_NE(usage_message(with(kSegResNet, "norm", json::parse(R"(["BATCH", {"num_groups": 2}])"))).find("num_groups"), std::string::npos);
  EXPECT_NE(usage_message(with(kSegResNet, "act", "PRELU")).find("`act`"), std::string::npos);
  EXPECT_NE(usage_message(with(kSegResNet, "spatial_dims", 2)).find("`spatial_dims`"), std::string::npos);
  EXPECT_NE(usage_message(with(kDynUNet, "strides", {1, 2})).find("`strides`"), std::string::npos);
  EXPECT_NE(usage_message(with(kDynUNet, "strides", {2, 2, 2})).find("`strides[0]`"), std::string::npos);
  EXPECT_NE(usage_message(with(kDynUNet, "kernel_size", {3, {3, 3}, 3})).find("`kernel_size[1]`"), std::string::npos);
  EXPECT_NE(usage_message(with(kDynUNet, "upsample_kernel_size", {2, 2})).find("`upsample_kernel_size`"), std::string::npos);
  EXPECT_NE(usage_message(with(kDynUNet, "filters", {4, 8})).find("`filters`"), std::string::npos);
  EXPECT_NE(usage_message(with(kDynUNet, "deep_supr_num", 2)).find("`deep_supr_num`"), std::string::npos);
  EXPECT_NE(usage_message(with(with(kDynUNet, "kernel_size", {3, 1, 3}), "strides", {1, 3, 2})).find("negative padding"),
            std::string::npos);  // kernel 1, stride 3: MONAI's get_padding refuses it too
  json no_kernel = kDynUNet;
  no_kernel.erase("kernel_size");
  EXPECT_NE(usage_message(no_kernel).find("`kernel_size` is required"), std::string::npos);
  EXPECT_NE(usage_message({{"name", 3}}).find("`name`"), std::string::npos);
}

TEST(Networks, DeepSupervisionStacksHeadsInTrainingModeOnly) {
  torch::manual_seed(0);
  auto net = model::make_network(kDynUNet);
  EXPECT_EQ(net->divisors(), (std::array<std::int64_t, 3>{4, 4, 2}));
  torch::Tensor x = torch::randn({1, 2, 8, 8, 4});
  net->train(true);
  torch::Tensor stacked = net->forward_train(x);
  ASSERT_EQ(stacked.sizes(), (std::vector<std::int64_t>{1, 2, 3, 8, 8, 4}));
  net->train(false);
  torch::NoGradGuard no_grad;
  torch::Tensor main = net->forward(x);
  EXPECT_EQ(main.sizes(), (std::vector<std::int64_t>{1, 3, 8, 8, 4}));
  EXPECT_TRUE(torch::allclose(stacked.select(1, 0), main, 1e-5, 1e-6));  // instance norm: same in both modes
  EXPECT_EQ(net->forward_train(x).dim(), 5);
  EXPECT_THROW(net->forward(torch::randn({1, 2, 8, 8, 3})), Error);
}

TEST(Networks, DtypeChangesKeepIntegerBuffers) {
  auto net = model::make_network(kSegResNet);
  net->to(torch::kFloat64);
  for (const auto& b : net->named_buffers()) {
    if (b.key().ends_with("num_batches_tracked")) EXPECT_EQ(b.value().scalar_type(), torch::kLong) << b.key();
    else EXPECT_EQ(b.value().scalar_type(), torch::kFloat64) << b.key();
  }
  for (const auto& p : net->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat64);
}

TEST(Networks, WeightsCarryBatchNormStatisticsBothWays) {
  torch::manual_seed(1);
  auto a = model::make_network(kSegResNet);
  a->train(true);
  a->forward(torch::randn({2, 2, 8, 8, 8}) * 3 + 1);  // moves running_mean/var, num_batches_tracked -> 1
  const auto path = temp_file("bn.pt");
  model::save_weights(*a, path);
  torch::manual_seed(2);
  auto b = model::make_network(kSegResNet);
  model::load_weights(*b, path);
  auto ba = a->named_buffers(), bb = b->named_buffers();
  ASSERT_EQ(ba.size(), bb.size());
  ASSERT_GT(ba.size(), 0u);
  for (const auto& item : ba) {
    EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
    if (item.key().ends_with("num_batches_tracked")) EXPECT_EQ(item.value().item<std::int64_t>(), 1);
    if (item.key().ends_with("running_mean")) EXPECT_GT(item.value().abs().max().item<float>(), 0.0f);
  }
  a->eval();
  b->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({1, 2, 8, 8, 8});
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
}

TEST(Networks, DynUNetWeightsCarryMonaiAliases) {
  torch::manual_seed(3);
  auto a = model::make_network(kDynUNet);
  const auto aliases = a->state_dict_aliases();
  // 3 levels: skip_layers.{downsample, next_layer.downsample, next_layer.next_layer, next_layer.upsample,
  // next_layer.super_head, upsample}.* name every tensor but output_block's once more.
  EXPECT_EQ(aliases.front().first, "skip_layers.downsample.conv1.conv.weight");
  EXPECT_EQ(aliases.front().second, "input_block.conv1.conv.weight");
  EXPECT_EQ(aliases.back().first, "skip_layers.upsample.conv_block.norm2.bias");
  EXPECT_EQ(aliases.size(), a->named_parameters().size() - 2);
  const auto path = temp_file("dyn.pt");
  model::save_weights(*a, path);
  auto b = model::make_network(kDynUNet);
  model::load_weights(*b, path);
  for (const auto& p : a->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()])) << p.key();
  // The file is strict the other way too: a net without deep supervision lacks the heads and their aliases.
  json plain = kDynUNet;
  plain["deep_supervision"] = false;
  auto c = model::make_network(plain);
  try {
    model::load_weights(*c, path);
    FAIL() << "loaded a file with unexpected tensors";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected deep_supervision_heads.0.conv.conv."), std::string::npos) << e.what();
  }
}

// nnU-Net's deep-supervision targets on the device (model/nnunet_loss.h) equal the host transform that
// batchgeneratorsv2's DownsampleSegForDSTransform is tested against (transforms/nnunet_targets.h), and
// PlainConvUNet's heads come at the resolutions they are compared at.
TEST(Networks, NnunetDeepSupervisionTargetsEqualTheHostDownsample) {
  torch::manual_seed(0);
  const torch::Tensor label = (torch::rand({2, 3, 12, 10, 8}) < 0.4).to(torch::kUInt8);
  auto net = segscale::model::make_network({{"name", "plainconvunet"}, {"input_channels", 1}, {"num_classes", 3}, {"n_stages", 3},
                                            {"features_per_stage", {2, 4, 8}}, {"kernel_sizes", 3}, {"strides", {1, 2, 2}},
                                            {"n_conv_per_stage", 1}, {"n_conv_per_stage_decoder", 1}, {"deep_supervision", true}});
  net->train();
  const auto heads = net->forward_heads(torch::zeros({2, 1, 12, 12, 8}));
  ASSERT_EQ(heads.size(), 2u);  // one per decoder stage (n_stages - 1)
  EXPECT_EQ(heads[1].sizes(), (std::vector<std::int64_t>{2, 3, 6, 6, 4}));
  net->eval();
  EXPECT_EQ(net->forward_heads(torch::zeros({2, 1, 12, 12, 8})).size(), 1u);
  std::vector<torch::Tensor> outs = {torch::zeros({2, 3, 12, 10, 8}), torch::zeros({2, 3, 6, 5, 4}), torch::zeros({2, 3, 3, 3, 2})};
  const auto targets = segscale::model::nnunet_deep_supervision_targets(label, outs);
  for (std::size_t h = 1; h < outs.size(); ++h) {
    const std::array<double, 3> scale{h == 1 ? 0.5 : 0.25, h == 1 ? 0.5 : 0.3, h == 1 ? 0.5 : 0.25};
    for (std::int64_t n = 0; n < 2; ++n) {
      const torch::Tensor one = label[n].contiguous();
      segscale::transforms::Extent3 shape{12, 10, 8}, out{};
      const auto host = segscale::transforms::nnunet_downsample(one.data_ptr<std::uint8_t>(), 3, shape, scale, out);
      ASSERT_EQ(out, (segscale::transforms::Extent3{outs[h].size(2), outs[h].size(3), outs[h].size(4)}));
      const torch::Tensor want = torch::from_blob(const_cast<std::uint8_t*>(host.data()), {3, out[0], out[1], out[2]}, torch::kUInt8);
      EXPECT_TRUE(torch::equal(targets[h][n], want)) << "head " << h << " sample " << n;
    }
  }
  EXPECT_TRUE(torch::equal(targets[0], label));
}
