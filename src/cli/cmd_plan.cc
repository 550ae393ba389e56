// segscale plan: nnU-Net's network plan for a dataset (target spacing, patch, kernels and strides as DynUNet
// takes them), from the headers of its training cases.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/catalog.h"
#include "io/nifti_image.h"
#include "prep/plan.h"
#include "transforms/spatial.h"
#include "util/error.h"
#include "util/plural.h"

namespace segscale::cli {
namespace {

struct PlanOptions {
  std::string data;
  std::vector<std::int64_t> patch;
  bool json = false;
  int min_feature_map = 4, max_pool = 999;
};

std::string triple(const prep::Int3& v) { return fmt::format("{}x{}x{}", v[0], v[1], v[2]); }
std::string triples(const std::vector<prep::Int3>& v) {
  std::vector<std::string> s;
  for (const auto& t : v) s.push_back(fmt::format("[{}, {}, {}]", t[0], t[1], t[2]));
  return fmt::format("[{}]", fmt::join(s, ", "));
}

void run_plan(const PlanOptions& o) {
  const data::Catalog cat = data::open_catalog(o.data);
  if (cat.training.empty()) throw error_at(o.data, "no training cases to plan from");
  // Each case's voxel size and extent in RAS axis order (the grid the chain's orientation step produces).
  std::vector<prep::Real3> spacings;
  std::vector<prep::Int3> sizes;
  for (const auto& c : cat.training) {
    const io::NiftiHeader h = io::read_nifti_header(c.images.front());
    const Affine a = h.best_affine();
    const transforms::Shape3 size{h.dim[1], h.dim[2], h.dim[3]};
    const transforms::OrientationPlan ras = transforms::plan_orientation(size, a, "RAS");
    prep::Real3 sp{};
    prep::Int3 sz{};
    for (int ax = 0; ax < 3; ++ax) {
      const int j = ras.perm[ax];
      sp[ax] = std::sqrt(a(0, j) * a(0, j) + a(1, j) * a(1, j) + a(2, j) * a(2, j));
      sz[ax] = size[j];
    }
    spacings.push_back(sp);
    sizes.push_back(sz);
  }
  const prep::Real3 target = prep::target_spacing(spacings, sizes);
  // The median shape resampled to the target spacing (nnU-Net: round(original_spacing / target * original_shape)).
  prep::Int3 median_shape{};
  for (int ax = 0; ax < 3; ++ax) {
    std::vector<double> sp, sz;
    for (const auto& s : spacings) sp.push_back(s[ax]);
    for (const auto& s : sizes) sz.push_back(static_cast<double>(s[ax]));
    median_shape[ax] = static_cast<std::int64_t>(std::nearbyint(prep::percentile(sp, 50) / target[ax] * prep::percentile(sz, 50)));
  }
  prep::Int3 patch{};
  if (!o.patch.empty()) {
    if (o.patch.size() != 3) throw UsageError("--patch takes three sizes X,Y,Z");
    for (int ax = 0; ax < 3; ++ax) {
      if (o.patch[static_cast<std::size_t>(ax)] < 1) throw UsageError(fmt::format("--patch {} is out of range: sizes must be at least 1", o.patch[static_cast<std::size_t>(ax)]));
      patch[ax] = o.patch[static_cast<std::size_t>(ax)];
    }
  } else {
    for (int ax = 0; ax < 3; ++ax) patch[ax] = std::min<std::int64_t>(median_shape[ax], 128);
  }
  const prep::PoolConvPlan plan = prep::get_pool_and_conv_props(target, patch, o.min_feature_map, o.max_pool);
  if (o.json) {
    nlohmann::ordered_json j;
    j["dataset"] = o.data;
    j["cases"] = cat.training.size();
    j["target_spacing"] = target;
    j["median_shape"] = median_shape;
    j["requested_patch"] = patch;
    j["patch_size"] = plan.patch_size;
    j["num_pool_per_axis"] = plan.num_pool_per_axis;
    j["kernel_size"] = plan.conv_kernel_sizes;
    j["strides"] = plan.dynunet_strides();
    j["upsample_kernel_size"] = plan.pool_op_kernel_sizes;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{}: {}\n", o.data, plural(static_cast<std::int64_t>(cat.training.size()), "training case"));
  fmt::print("target spacing      {:.4g} x {:.4g} x {:.4g} mm (RAS axes; nnU-Net v1: median, 10th percentile on an anisotropic axis)\n", target[0], target[1], target[2]);
  fmt::print("median shape        {} (at the target spacing)\n", triple(median_shape));
  fmt::print("patch               {}{}\n", triple(plan.patch_size), plan.patch_size == patch ? "" : fmt::format(" (requested {}, padded to a multiple of {})", triple(patch), triple(plan.must_be_divisible_by)));
  fmt::print("pools per axis      {}\n", triple(plan.num_pool_per_axis));
  fmt::print("DynUNet kernel_size {}\n", triples(plan.conv_kernel_sizes));
  fmt::print("DynUNet strides     {}\n", triples(plan.dynunet_strides()));
  fmt::print("upsample_kernel_size {}\n", triples(plan.pool_op_kernel_sizes));
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plan", "nnU-Net's plan for a dataset: target spacing, patch, DynUNet kernels and strides");
  auto o = std::make_shared<PlanOptions>();
  cmd->add_option("--data", o->data, "Dataset (MSD dataset.json folder or BraTS case folders)")->required();
  cmd->add_option("--patch", o->patch, "Patch X,Y,Z in voxels at the target spacing (default: the median shape, at most 128 per axis)")
      ->delimiter(',')->expected(3);
  cmd->add_option("--min-feature-map", o->min_feature_map, "Smallest bottleneck edge (nnU-Net: 4)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-pool", o->max_pool, "Most poolings per axis (default 999 as nnU-Net v1's 3-D planner, i.e. no cap)")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o] { run_plan(*o); });
}

}  // namespace segscale::cli
