#pragma once
// Weights files in MONAI's format: what Python's torch.save(dict(model.state_dict()), path) writes and
// torch.load(path) reads back as a plain dict of name -> tensor, which the MONAI network (UNet, SegResNet,
// DynUNet)(...).load_state_dict(...) accepts unchanged. Parameters and buffers (BatchNorm statistics) alike.
#include <filesystem>

#include "model/network.h"

namespace segscale::model {

// Writes the model's parameters and buffers (CPU; floating tensors as float32, others as they are: BatchNorm's
// num_batches_tracked stays int64) atomically, under MONAI's names in MONAI's state_dict order (each module's
// parameters, then its buffers, then its children), then the network's state_dict_aliases (DynUNet's skip_layers.*).
void save_weights(Network& model, const std::filesystem::path& path);

// Loads a dict written by save_weights or by Python's torch.save: dict(state_dict), model.state_dict() itself (an
// OrderedDict, as MONAI's tutorials save) or {"state_dict": ...} / {"model_state_dict": ...}. A segscale
// checkpoint.pt is refused, naming model.pt and --resume (model/torch_save_file.h). Strict: every model
// parameter and buffer must be present with its shape, and no other key except the network's aliases (accepted
// when their shape fits; their values are not read). Throws Error naming the file and the
// missing, unexpected or mis-shaped names.
void load_weights(Network& model, const std::filesystem::path& path);

}  // namespace segscale::model
