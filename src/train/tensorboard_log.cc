#include "train/tensorboard_log.h"

#include <chrono>
#include <cstring>

#include "io/file.h"
#include "io/tfrecord.h"
#include "util/error.h"

namespace segscale::train {
namespace {

// Protocol buffer wire format, the few pieces TensorBoard's Event needs.
enum Wire { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void key(std::string& out, int field, Wire w) { varint(out, (static_cast<std::uint64_t>(field) << 3) | w); }
void bytes_field(std::string& out, int field, std::string_view b) {
  key(out, field, kBytes);
  varint(out, b.size());
  out.append(b);
}
template <class T>
void fixed_field(std::string& out, int field, T v) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  key(out, field, sizeof(T) == 8 ? kFixed64 : kFixed32);
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  out.append(b, sizeof(T));
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
std::string event(std::int64_t step, const std::string* summary, std::string_view file_version = {}) {
  std::string e;
  fixed_field(e, 1, now_seconds());
  key(e, 2, kVarint);
  varint(e, static_cast<std::uint64_t>(step));
  if (!file_version.empty()) bytes_field(e, 3, file_version);
  if (summary) bytes_field(e, 5, *summary);
  return e;
}

// Summary { repeated Value value = 1; }
std::string summary_of(const std::string& value) {
  std::string s;
  bytes_field(s, 1, value);
  return s;
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool done() const { return at_ >= b_.size(); }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ >= b_.size()) throw Error("event: truncated varint");
      const auto c = static_cast<unsigned char>(b_[at_++]);
      v |= static_cast<std::uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    throw Error("event: varint too long");
  }
  std::string_view take(std::size_t n) {
    if (n > b_.size() - at_) throw Error("event: field runs past the end");
    const std::string_view v = b_.substr(at_, n);
    at_ += n;
    return v;
  }
  // Calls f(field, wire, payload-as-bytes, varint value) for each field.
  template <class F>
  void each(F&& f) {
    while (!done()) {
      const std::uint64_t k = varint();
      const int field = static_cast<int>(k >> 3);
      const int wire = static_cast<int>(k & 7);
      if (wire == kVarint) {
        f(field, wire, std::string_view(), varint());
      } else if (wire == kFixed64) {
        f(field, wire, take(8), 0);
      } else if (wire == kFixed32) {
        f(field, wire, take(4), 0);
      } else if (wire == kBytes) {
        f(field, wire, take(varint()), 0);
      } else {
        throw Error("event: unsupported wire type " + std::to_string(wire));
      }
    }
  }

 private:
  std::string_view b_;
  std::size_t at_ = 0;
};

}  // namespace

EventFields parse_event(std::string_view bytes) {
  EventFields e;
  Reader(bytes).each([&](int field, int wire, std::string_view b, std::uint64_t v) {
    if (field == 1 && wire == kFixed64) std::memcpy(&e.wall_time, b.data(), 8);
    if (field == 2 && wire == kVarint) e.step = static_cast<std::int64_t>(v);
    if (field == 3 && wire == kBytes) e.file_version = std::string(b);
    if (field != 5 || wire != kBytes) return;
    Reader(b).each([&](int sf, int sw, std::string_view value, std::uint64_t) {
      if (sf != 1 || sw != kBytes || !e.tag.empty()) return;
      Reader(value).each([&](int vf, int vw, std::string_view vb, std::uint64_t) {
        if (vf == 1 && vw == kBytes) e.tag = std::string(vb);
        if (vf == 2 && vw == kFixed32) {
          float f;
          std::memcpy(&f, vb.data(), 4);
          e.simple_value = f;
        }
        if (vf == 9 && vw == kBytes)  // SummaryMetadata { PluginData plugin_data = 1 { string plugin_name = 1 } }
          Reader(vb).each([&](int mf, int mw, std::string_view pd, std::uint64_t) {
            if (mf == 1 && mw == kBytes)
              Reader(pd).each([&](int pf, int pw, std::string_view name, std::uint64_t) {
                if (pf == 1 && pw == kBytes) e.plugin = std::string(name);
              });
          });
        if (vf == 8 && vw == kBytes)  // TensorProto { repeated bytes string_val = 8 }
          Reader(vb).each([&](int tf, int tw, std::string_view s, std::uint64_t) {
            if (tf == 8 && tw == kBytes) e.text = std::string(s);
          });
      });
    });
  });
  return e;
}

TensorBoardLog::TensorBoardLog(const std::filesystem::path& path, bool resume, std::int64_t keep_up_to_step) : path_(path) {
  std::string kept;
  if (resume && std::filesystem::exists(path)) {
    const io::Bytes b = io::read_file(path);
    const io::TfRecords recs = io::tfrecord_split(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    for (const std::string& r : recs.records) {
      EventFields e;
      try {
        e = parse_event(r);
      } catch (const Error&) {
        continue;  // not ours: dropped rather than trusted
      }
      const bool rewritten = e.step == keep_up_to_step && e.plugin == "text";  // written again at the resumed step
      if (e.step <= keep_up_to_step && !rewritten) kept += io::tfrecord_frame(r);
    }
  }
  if (kept.empty()) kept = io::tfrecord_frame(event(0, nullptr, "brain.Event:2"));
  io::write_file_atomic(path, kept);
  out_.open(path, std::ios::binary | std::ios::app);
  if (!out_) throw error_at(path.string(), "cannot open for appending");
}

void TensorBoardLog::append(const std::string& e) {
  out_ << io::tfrecord_frame(e);
  out_.flush();
  if (!out_) throw error_at(path_.string(), "cannot write (disk full?)");
}

// Summary.Value { string tag = 1; float simple_value = 2; }
void TensorBoardLog::scalar(std::string_view tag, double value, std::int64_t step) {
  std::string v;
  bytes_field(v, 1, tag);
  fixed_field(v, 2, static_cast<float>(value));
  const std::string s = summary_of(v);
  append(event(step, &s));
}

// Summary.Value { tag = 1; SummaryMetadata metadata = 9 { PluginData plugin_data = 1 { plugin_name = 1: "text" } };
// TensorProto tensor = 8 { dtype = 1: DT_STRING (7); TensorShapeProto tensor_shape = 2 (a scalar); string_val = 8 } }
void TensorBoardLog::text(std::string_view tag, std::string_view markdown, std::int64_t step) {
  std::string plugin, metadata, tensor, v;
  bytes_field(plugin, 1, "text");
  bytes_field(metadata, 1, plugin);
  key(tensor, 1, kVarint);
  varint(tensor, 7);
  bytes_field(tensor, 2, "");
  bytes_field(tensor, 8, markdown);
  bytes_field(v, 1, tag);
  bytes_field(v, 9, metadata);
  bytes_field(v, 8, tensor);
  const std::string s = summary_of(v);
  append(event(step, &s));
}

}  // namespace segscale::train
