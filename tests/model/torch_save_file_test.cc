// Reading torch.save files without libtorch's unpickler (which turns an OrderedDict into None): a real file written
// by PyTorch 1.13 (tests/model/data/wrapped_ordered_state_dict.pth, made by
//   sd = OrderedDict(layer.weight = arange(6).reshape(2, 3), layer.num_batches_tracked = tensor(7),
//                    layer.t = that weight transposed, layer.slice = arange(10, float64)[4:7]); sd._metadata = ...
//   torch.save({"model_state_dict": sd, "epoch": 3, "note": [1, 2.5, "x", None, True]}, F)),
// and malformed bytes, which must be refused with the file named, never read past their end (ASan build).
#include "model/torch_save_file.h"

#include <gtest/gtest.h>

#include <cstring>

#include "../support/temp_dir.h"
#include "io/file.h"
#include "util/error.h"

namespace segscale::model {
namespace {

using segscale::testing::expect_error_containing;

std::vector<char> fixture() {
  const auto b = io::read_file(std::string(SEGSCALE_TEST_SOURCE) + "/model/data/wrapped_ordered_state_dict.pth");
  return {b.begin(), b.end()};
}

TEST(TorchSaveFile, ReadsAWrappedOrderedDictAsPyTorchWroteIt) {
  const auto file = fixture();
  EXPECT_EQ(torch_save_kind(file), TorchSaveKind::kPickle);
  const auto e = read_state_dict_entries(file, "f.pth");
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].first, "layer.weight");  // file order, the wrapper's other keys left out
  EXPECT_EQ(e[1].first, "layer.num_batches_tracked");
  EXPECT_EQ(e[0].second.storage_type, "FloatStorage");
  EXPECT_EQ(e[0].second.sizes, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(e[0].second.strides, (std::vector<std::int64_t>{3, 1}));
  EXPECT_EQ(e[1].second.storage_type, "LongStorage");
  EXPECT_TRUE(e[1].second.sizes.empty());
  EXPECT_EQ(e[2].second.record, e[0].second.record);  // the transpose shares the weight's storage
  EXPECT_EQ(e[2].second.strides, (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(e[3].second.storage_type, "DoubleStorage");
  EXPECT_EQ(e[3].second.offset, 4);
  // The storage's bytes: 0..5 as float32, little-endian.
  const std::string_view w = zip_entry(file, e[0].second.record, "f.pth");
  ASSERT_EQ(w.size(), 24u);
  float v[6];
  std::memcpy(v, w.data(), 24);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(v[i], static_cast<float>(i));
  std::int64_t n;
  std::memcpy(&n, zip_entry(file, e[1].second.record, "f.pth").data(), 8);
  EXPECT_EQ(n, 7);
}

TEST(TorchSaveFile, MalformedFilesAreRefusedNamingTheFile) {
  const auto file = fixture();
  EXPECT_EQ(torch_save_kind({'n', 'o', 'p', 'e', '!'}), TorchSaveKind::kNotZip);
  expect_error_containing([&] { read_state_dict_entries({'P', 'K', 3, 4}, "a.pth"); }, {"a.pth", "not a readable torch.save zip"});
  // Every truncation of the real file: an error naming it, never a crash or a read past the end.
  for (std::size_t n = 0; n < file.size(); n += 7) {
    const std::vector<char> cut(file.begin(), file.begin() + static_cast<long>(n));
    try {
      read_state_dict_entries(cut, "cut.pth");
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find("cut.pth"), std::string::npos) << err.what();
    }
  }
  // Every single-byte corruption of the pickle stream likewise (the entries are stored, so these bytes are read).
  const auto entries = read_state_dict_entries(file, "f.pth");
  for (std::size_t i = 0; i < file.size(); i += 3) {
    auto bad = file;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    try {
      for (const auto& [name, t] : read_state_dict_entries(bad, "bad.pth")) zip_entry(bad, t.record, "bad.pth");
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find("bad.pth"), std::string::npos) << err.what();
    }
  }
}

}  // namespace
}  // namespace segscale::model
