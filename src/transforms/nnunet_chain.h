#pragma once
// nnU-Net's training augmentation chain (nnunetv2 2.8.1 nnUNetTrainer.get_training_transforms, 3-D, no dummy 2-D,
// no cascade): spatial (rotation 0.2, scaling 0.2), noise 0.1, blur 0.2, brightness 0.15, contrast 0.15, low
// resolution 0.25, inverted gamma 0.1, gamma 0.3, mirroring, masking, -1 removal, regions, deep-supervision
// targets; each step's draws in nnU-Net's order from an NnunetDraws source (numpy's legacy stream for parameters,
// torch's for gates, channel picks and noise; ../shared/spec/nnunet-semantics.md section 5.13). With
// NnunetReplayDraws seeded as np.random.seed(a) and torch.manual_seed(b) it replays nnU-Net's own draws, sample
// after sample. libtorch-free.
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "transforms/nnunet_intensity.h"
#include "transforms/nnunet_spatial.h"

namespace segscale::transforms {

class NnunetDraws {
 public:
  virtual ~NnunetDraws() = default;
  virtual double np_random() = 0;                                       // numpy random(): [0, 1), 53 bits
  double np_uniform(double lo, double hi) { return lo + (hi - lo) * np_random(); }
  virtual float torch_rand() = 0;                                       // torch.rand(1) on the CPU: 24 bits
  virtual void torch_normal(float* out, std::size_t n, float mean, float std) = 0;  // Tensor.normal_
};

// numpy's global RandomState and torch's default CPU generator, both MT19937, seeded as nnU-Net's tests seed them.
class NnunetReplayDraws final : public NnunetDraws {
 public:
  NnunetReplayDraws(std::uint32_t numpy_seed, std::uint32_t torch_seed) : np_(numpy_seed), torch_(torch_seed) {}
  double np_random() override;
  // numpy's randint on the same stream: the sampler's draws (nnU-Net's loader and transforms share numpy's
  // global RandomState, one sample after the other).
  std::int64_t np_randint(std::int64_t lo, std::int64_t hi);
  float torch_rand() override;
  void torch_normal(float* out, std::size_t n, float mean, float std) override;

 private:
  std::mt19937 np_, torch_;
};

struct NnunetAugmentSettings {
  Extent3 patch{};                              // the plan's patch (the output)
  std::vector<bool> use_mask_for_norm;          // per channel: MaskImageTransform's channels
  std::vector<std::vector<int>> regions;        // empty: a label dataset (int16 targets)
  std::vector<std::array<double, 3>> ds_scales; // empty: no deep supervision (one target at full size)
};

// What the chain drew, for logs and tests.
struct NnunetAugmentLedger {
  bool rotated = false, scaled = false;
  std::array<double, 3> angles{};
  double zoom = 1;
  std::vector<std::string> fired;  // names of the gated transforms that ran
  std::vector<int> mirrored;
};

struct NnunetAugmented {
  std::vector<float> image;  // (C, patch)
  std::vector<std::vector<std::int16_t>> targets;  // per deep-supervision scale: (regions or 1, shape)
  std::vector<Extent3> target_shapes;
  int target_channels = 1;
  NnunetAugmentLedger ledger;
};

// The loaded patch the sampler chose (its box read in place from the case; nnunet_spatial.h), shape >= patch.
NnunetAugmented nnunet_augment(const LoadedPatch& in, const NnunetAugmentSettings& s, NnunetDraws& draws);
inline NnunetAugmented nnunet_augment(const float* image, int channels, const std::int16_t* seg, const Extent3& in_shape,
                                      const NnunetAugmentSettings& s, NnunetDraws& draws) {
  return nnunet_augment(LoadedPatch::whole(image, channels, seg, in_shape), s, draws);
}

}  // namespace segscale::transforms
