// libFuzzer target: NIfTI-1/2 header and data decoding, plain and gzip.
#include "io/nifti_image.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    segscale::io::Bytes b(data, data + size);
    auto img = segscale::io::decode_nifti(std::move(b), "fuzz.nii");
    auto v = segscale::io::to_float32(img);
    (void)img.affine();
  } catch (const segscale::Error&) {
  }
  return 0;
}
