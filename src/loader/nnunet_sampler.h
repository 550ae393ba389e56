#pragma once
// nnU-Net's patch sampler (nnunetv2 2.8.1 training/dataloading/data_loader.py, nnUNetDataLoader; batchgenerators'
// DataLoader.get_indices): per batch, B cases drawn uniformly with replacement; the last B - round(B x (1 - 0.33))
// slots forced onto foreground (a class or region with stored locations, uniformly, then one of its stored voxels
// at the patch's centre, clamped below only); the others anywhere in nnU-Net's symmetric range that lets the
// final patch reach past the border by half the enlargement; then the box copied out, images padded with 0 and
// segmentations with -1. The draws come from a Draws source: NumpyDraws replays numpy's global RandomState after
// np.random.seed(s), so with the same seed segscale picks nnU-Net's cases, slots and boxes draw for draw.
// libtorch-free.
#include <array>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace segscale::loader {

using Int3 = std::array<std::int64_t, 3>;

class Draws {
 public:
  virtual ~Draws() = default;
  // numpy's randint(lo, hi): uniform in [lo, hi); no draw when hi - lo == 1.
  virtual std::int64_t randint(std::int64_t lo, std::int64_t hi) = 0;
};

// numpy's legacy RandomState (MT19937, masked rejection) seeded as np.random.seed(seed).
class NumpyDraws final : public Draws {
 public:
  explicit NumpyDraws(std::uint32_t seed) : g_(seed) {}
  std::int64_t randint(std::int64_t lo, std::int64_t hi) override;

 private:
  std::mt19937 g_;
};

struct NnunetSamplerConfig {
  int batch_size = 2;
  Int3 patch_size{};        // what the loader cuts: nnU-Net's initial (enlarged) patch for training
  Int3 final_patch_size{};  // the plan's patch
  double oversample_foreground_percent = 0.33;
};

// A preprocessed case as the sampler sees it: its shape and, per class or region, its stored foreground voxels
// (rows (0, i0, i1, i2), as DefaultPreprocessor stores them).
struct SamplerCase {
  Int3 shape{};
  std::vector<std::vector<std::array<std::int64_t, 4>>> class_locations;
};

struct PatchBox {
  std::size_t case_index = 0;
  bool force_fg = false;
  Int3 lbs{}, ubs{};  // half-open; may reach outside the case (padded)
};

// The patch the loader cuts so that nnU-Net's rotations (±30° about each axis) and zooms keep the final patch
// inside it: get_patch_size(final, rot, rot, rot, (0.85, 1.25)) for 3-D patches without dummy 2-D augmentation.
Int3 nnunet_initial_patch_size(const Int3& final_patch_size);

// _oversample_last_XX_percent: slot j of a batch of B is forced onto foreground.
bool forced_foreground(int slot, int batch_size, double oversample_foreground_percent);

// get_bbox for one case.
PatchBox nnunet_bbox(Draws& draws, const SamplerCase& c, bool force_fg, const NnunetSamplerConfig& cfg);

// One batch: the cases (np.random.choice(identifiers, B)), then each slot's box in order.
std::vector<PatchBox> nnunet_batch(Draws& draws, std::span<const SamplerCase> cases, const NnunetSamplerConfig& cfg);

// crop_and_pad_nd of one case into a patch: image (C, patch) padded with 0, segmentation (1, patch) with -1.
void crop_and_pad(const float* image, int channels, const std::int16_t* seg, const Int3& shape, const PatchBox& box, float* image_out,
                  std::int16_t* seg_out);

}  // namespace segscale::loader
