// storage_tool ROOT COMMAND ...: the Storage interface from the command line, for the S3 tests.
//   put NAME LOCAL_FILE   write through temp_path + commit_temp (a multipart upload above the part size)
//   write NAME TEXT       write_atomic
//   get NAME              the object to stdout
//   range NAME OFF LEN    read_range to stdout
//   size NAME             the size, or "absent"
//   ls [PREFIX]           one name a line
//   rm NAME               remove
//   mkroot                make_root
// Errors: "storage_tool: <message>" on stderr, exit 1.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "storage/storage.h"
#include "util/error.h"

using namespace segscale;

int main(int argc, char** argv) {
  try {
    if (argc < 3) throw Error("usage: storage_tool ROOT COMMAND ARGS");
    auto st = storage::open_storage(argv[1]);
    const std::string cmd = argv[2];
    auto arg = [&](int i) -> std::string {
      if (argc <= i) throw Error(cmd + ": missing argument");
      return argv[i];
    };
    auto out = [](const io::Bytes& b) { std::fwrite(b.data(), 1, b.size(), stdout); };
    if (cmd == "put") {
      auto tmp = st->temp_path(arg(3));
      {
        std::ifstream in(arg(4), std::ios::binary);
        std::ofstream o(tmp, std::ios::binary);
        o << in.rdbuf();
        if (!o) throw Error(tmp.string() + ": cannot write");
      }
      st->commit_temp(tmp, arg(3));
    } else if (cmd == "write") {
      st->write_atomic(arg(3), arg(4));
    } else if (cmd == "get") {
      out(st->read(arg(3)));
    } else if (cmd == "range") {
      out(st->read_range(arg(3), std::stoull(arg(4)), std::stoull(arg(5))));
    } else if (cmd == "size") {
      auto n = st->size(arg(3));
      fmt::print("{}\n", n ? std::to_string(*n) : "absent");
    } else if (cmd == "ls") {
      for (const auto& n : st->list(argc > 3 ? argv[3] : "")) fmt::print("{}\n", n);
    } else if (cmd == "rm") {
      st->remove(arg(3));
    } else if (cmd == "mkroot") {
      st->make_root();
    } else {
      throw Error("unknown command " + cmd);
    }
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "storage_tool: {}\n", e.what());
    return 1;
  }
}
