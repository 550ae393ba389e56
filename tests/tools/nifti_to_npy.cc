// Test helper: decodes a NIfTI file with segscale's reader and writes its float32 voxel values as .npy in
// Fortran order (x fastest), so numpy loads exactly nibabel's np.asanyarray(img.dataobj).astype(float32).
#include <cstdio>

#include "io/nifti_image.h"
#include "io/npy.h"
#include "util/error.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: nifti_to_npy IN.nii[.gz] OUT.npy\n");
    return 2;
  }
  try {
    auto img = segscale::io::read_nifti(argv[1]);
    auto values = segscale::io::to_float32(img);
    segscale::io::write_npy(argv[2], img.header.shape(), values, /*fortran_order=*/true);
  } catch (const segscale::Error& e) {
    std::fprintf(stderr, "nifti_to_npy: %s\n", e.what());
    return 1;
  }
  return 0;
}
