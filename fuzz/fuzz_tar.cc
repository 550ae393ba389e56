// libFuzzer target: walking a tar shard member by member, as verify does.
#include "io/tar.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::size_t pos = 0;
  try {
    while (pos + segscale::io::kTarBlock <= size) {
      segscale::io::TarMember m;
      if (!segscale::io::parse_tar_header({data + pos, segscale::io::kTarBlock}, "fuzz.tar", m)) break;
      const std::size_t off = pos + segscale::io::kTarBlock;
      if (m.size > size - off) break;  // truncated member: verify reports it
      pos = off + m.size + segscale::io::tar_padding(m.size);
    }
  } catch (const segscale::Error&) {
  }
  return 0;
}
