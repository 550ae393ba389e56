#pragma once
// A case as nnU-Net's preprocessing leaves it, in a sample store made by `segscale prep --plans` (settings mode
// "nnunet"): <key>.image.npy (C, a0, a1, a2) float32, <key>.label.npy (1, a0, a1, a2) int16 with -1 outside the
// nonzero crop (nnU-Net's segmentation, not TC/WT/ET channels), and <key>.json with the case's properties and, per
// class or region of the plan, the foreground voxels nnU-Net's sampler draws from (as i0, i1, i2 triples; nnU-Net
// keeps them as (0, i0, i1, i2) rows in its .pkl). libtorch-free.
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

namespace segscale::store {

inline constexpr const char* kNnunetMode = "nnunet";

struct NnunetSampleMeta {
  int channels = 0;
  std::array<std::int64_t, 3> shape{};
  std::vector<std::vector<std::array<std::int64_t, 3>>> class_locations;  // per class or region of the plan
  nlohmann::json properties = nlohmann::json::object();  // spacing, crop box, shapes before cropping (nnU-Net's)
};

nlohmann::json nnunet_sample_json(const std::string& case_key, const NnunetSampleMeta& m);
// Throws Error naming `where` for a member that is not an nnU-Net sample's.
NnunetSampleMeta nnunet_sample_meta(std::span<const std::uint8_t> json_member, const std::string& where);

// The voxels of a read sample, checked against its meta: pointers into `image` / `label` members when aligned,
// else into the copies kept here.
struct NnunetSampleArrays {
  const float* image = nullptr;
  const std::int16_t* seg = nullptr;
  std::vector<float> image_copy;
  std::vector<std::int16_t> seg_copy;
};
void nnunet_sample_arrays(std::span<const std::uint8_t> image_member, std::span<const std::uint8_t> label_member, const NnunetSampleMeta& m,
                          const std::string& where, NnunetSampleArrays& out);

}  // namespace segscale::store
