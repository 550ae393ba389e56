#include "loader/loader.h"

#include <cstring>

namespace segscale::loader {

Batch to_tensors(HostBatch host, bool pin_memory) {
  Batch batch;
  batch.index = host.index;
  batch.keys = std::move(host.keys);
  if (batch.keys.empty()) return batch;
  const std::vector<std::int64_t> ishape(host.image_shape.begin(), host.image_shape.end());
  const std::vector<std::int64_t> lshape(host.label_shape.begin(), host.label_shape.end());
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  if (pin_memory) {
    batch.image = torch::empty(ishape, f32.pinned_memory(true));
    std::memcpy(batch.image.data_ptr<float>(), host.image.data(), host.image.size() * sizeof(float));
  } else {
    // The tensor owns the image buffer; it goes back to the loader's pool when the tensor is freed.
    auto owner = std::make_shared<HostBatch>();
    owner->pool = host.pool;
    owner->image = std::move(host.image);
    batch.image = torch::from_blob(owner->image.data(), ishape, [owner](void*) mutable { owner.reset(); }, f32);
  }
  batch.label = torch::empty(lshape, f32.pinned_memory(pin_memory));
  float* dst = batch.label.data_ptr<float>();
  for (std::size_t v = 0; v < host.label.size(); ++v) dst[v] = host.label[v];
  return batch;  // `host` goes out of scope: its label (and image when copied) return to the loader's pool
}

std::optional<Batch> Loader::next() {
  auto host = host_.next();
  if (!host) return std::nullopt;
  return to_tensors(std::move(*host), pin_memory_);
}

}  // namespace segscale::loader
