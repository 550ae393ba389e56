#pragma once
// Reading the weights files people have, as Python's torch.save writes them, without Python and without
// libtorch's C++ unpickler, which cannot read them: torch.save(model.state_dict(), F) pickles an OrderedDict,
// which libtorch's unpickler turns into None (it expects OrderedDict only as a tensor's empty backward hooks),
// and then fails on its first item with an internal assert. MONAI's tutorials save exactly that.
//
// The format (torch/serialization.py, _save): a zip archive "<name>/data.pkl" (pickle protocol 2) whose tensors are
// torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, requires_grad, hooks) and whose
// storages are the stored entries "<name>/data/<key>", little-endian. This reads the subset of pickle a state dict
// needs (dicts, OrderedDicts, tuples, lists, strings, numbers, tensors, parameters) and ignores the rest (an
// OrderedDict's _metadata, other objects' state). libtorch-free: weights.cc makes the tensors.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace segscale::model {

// One tensor of the file: where its storage is and how the tensor views it.
struct StoredTensor {
  std::string storage_type;  // "FloatStorage", "LongStorage", ... (torch.<type>)
  std::string record;        // the zip entry holding the storage, e.g. "archive/data/0"
  std::int64_t offset = 0;   // in elements
  std::vector<std::int64_t> sizes, strides;
  std::string_view data;     // the storage's bytes (little-endian), a view into the file's buffer
};

enum class TorchSaveKind { kPickle, kScriptArchive, kNotZip };

// kScriptArchive when the zip holds a TorchScript archive's records (constants.pkl or code/: a segscale
// checkpoint.pt), kNotZip for other bytes (a legacy non-zip torch.save, or no torch file at all), else kPickle.
TorchSaveKind torch_save_kind(const std::vector<char>& file);

// The name -> tensor entries of the file's dict, in file order: the top-level dict, or the dict under its
// "state_dict" or "model_state_dict" key (Lightning's and many training scripts' checkpoints) or its
// "network_weights" key (nnU-Net's checkpoint_final.pth / checkpoint_best.pth). Throws Error
// (prefixed by `where`) for a file that is no such dict, or whose pickle uses what a state dict does not. Each
// entry's `data` views `file`'s buffer (the zip directory is read once for all of them).
std::vector<std::pair<std::string, StoredTensor>> read_state_dict_entries(const std::vector<char>& file, const std::string& where);

// The bytes of a stored (uncompressed) zip entry; throws Error (prefixed by `where`) when absent or compressed.
std::string_view zip_entry(const std::vector<char>& file, const std::string& name, const std::string& where);

}  // namespace segscale::model
