#include "model/torch_save_file.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <memory>

#include "util/error.h"

namespace segscale::model {
namespace {

// --- the zip container (stored entries, zip64 where sizes or offsets need it) ---------------------------------

std::uint64_t le(const std::vector<char>& b, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<std::uint8_t>(b[at + static_cast<std::size_t>(i)]);
  return v;
}

struct ZipEntry {
  std::uint64_t local_header = 0, size = 0;
  int method = 0;
};

std::map<std::string, ZipEntry> zip_directory(const std::vector<char>& b, const std::string& where) {
  const auto bad = [&](const char* what) { return error_at(where, std::string("not a readable torch.save zip: ") + what); };
  if (b.size() < 22) throw bad("too short");
  std::size_t eocd = b.size() - 22;
  while (le(b, eocd, 4) != 0x06054b50) {
    if (eocd == 0 || b.size() - eocd > 22 + 65535) throw bad("no end of central directory");
    --eocd;
  }
  std::uint64_t count = le(b, eocd + 10, 2), cd = le(b, eocd + 16, 4);
  if ((cd == 0xFFFFFFFF || count == 0xFFFF) && eocd >= 20 && le(b, eocd - 20, 4) == 0x07064b50) {  // zip64
    const std::uint64_t z = le(b, eocd - 20 + 8, 8);
    if (z + 56 > b.size() || le(b, z, 4) != 0x06064b50) throw bad("broken zip64 end record");
    count = le(b, z + 32, 8);
    cd = le(b, z + 48, 8);
  }
  std::map<std::string, ZipEntry> out;
  std::size_t at = cd;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (at + 46 > b.size() || le(b, at, 4) != 0x02014b50) throw bad("broken central directory");
    const std::size_t n = le(b, at + 28, 2), extra = le(b, at + 30, 2), comment = le(b, at + 32, 2);
    if (at + 46 + n + extra > b.size()) throw bad("broken central directory");
    ZipEntry e;
    e.method = static_cast<int>(le(b, at + 10, 2));
    e.size = le(b, at + 24, 4);
    std::uint64_t comp = le(b, at + 20, 4);
    e.local_header = le(b, at + 42, 4);
    // zip64 extra field (id 1): the 8-byte values of those fields that read 0xFFFFFFFF, in this order.
    for (std::size_t x = at + 46 + n; x + 4 <= at + 46 + n + extra;) {
      const std::size_t id = le(b, x, 2), len = le(b, x + 2, 2);
      if (id == 1) {
        std::size_t f = x + 4;
        if (e.size == 0xFFFFFFFF) e.size = le(b, f, 8), f += 8;
        if (comp == 0xFFFFFFFF) comp = le(b, f, 8), f += 8;
        if (e.local_header == 0xFFFFFFFF) e.local_header = le(b, f, 8);
      }
      x += 4 + len;
    }
    out[std::string(b.data() + at + 46, n)] = e;
    at += 46 + n + extra + comment;
  }
  return out;
}

// --- the pickle subset of a state dict ---------------------------------------------------------------------

struct Value;
using Ref = std::shared_ptr<Value>;
struct Value {
  enum Kind { kNone, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kObject, kMark } kind = kNone;
  std::int64_t i = 0;
  double f = 0;
  std::string s, name;                   // string; global module and name; storage type and key
  std::vector<Ref> items;                // tuple, list
  std::vector<std::pair<Ref, Ref>> dict;  // dict (in insertion order)
  StoredTensor tensor;
};

Ref make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

class Unpickler {
 public:
  Unpickler(std::string_view pkl, std::string archive, std::string where) : p_(pkl), archive_(std::move(archive)), where_(std::move(where)) {}

  Ref run() {
    for (;;) {
      const auto op = static_cast<unsigned char>(byte());
      switch (op) {
        case 0x80: byte(); break;                          // PROTO
        case 0x95: take(8); break;                         // FRAME
        case '.': return pop();                            // STOP
        case '(': push(make(Value::kMark)); break;         // MARK
        case '0': pop(); break;                            // POP
        case '1': popmark(); break;                        // POP_MARK
        case '2': push(top()); break;                      // DUP
        case 'N': push(make(Value::kNone)); break;         // NONE
        case 0x88: push(integer(1)); break;                // NEWTRUE
        case 0x89: push(integer(0)); break;                // NEWFALSE
        case 'K': push(integer(static_cast<std::uint8_t>(byte()))); break;  // BININT1
        case 'M': push(integer(static_cast<std::int64_t>(uint(2)))); break;  // BININT2
        case 'J': push(integer(static_cast<std::int32_t>(uint(4)))); break;  // BININT
        case 0x8a: push(integer(long1(static_cast<std::uint8_t>(byte())))); break;  // LONG1
        case 'G': {                                        // BINFLOAT: big-endian double
          std::uint64_t u = 0;
          for (char c : take(8)) u = u << 8 | static_cast<std::uint8_t>(c);
          auto v = make(Value::kFloat);
          std::memcpy(&v->f, &u, 8);
          push(v);
          break;
        }
        case 'X': push(string(take(uint(4)))); break;    // BINUNICODE
        case 0x8c: push(string(take(static_cast<std::uint8_t>(byte())))); break;  // SHORT_BINUNICODE
        case 'T': push(string(take(uint(4)))); break;      // BINSTRING
        case 'U': push(string(take(static_cast<std::uint8_t>(byte())))); break;  // SHORT_BINSTRING
        case 'c': {                                        // GLOBAL module\nname\n
          auto g = make(Value::kGlobal);
          g->s = line();
          g->name = line();
          push(g);
          break;
        }
        case 0x93: {                                       // STACK_GLOBAL
          auto g = make(Value::kGlobal);
          g->name = pop()->s;
          g->s = pop()->s;
          push(g);
          break;
        }
        case 'q': memo_[static_cast<std::uint8_t>(byte())] = top(); break;      // BINPUT
        case 'r': memo_[uint(4)] = top(); break;                                 // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;                           // MEMOIZE
        case 'h': push(memo(static_cast<std::uint8_t>(byte()))); break;          // BINGET
        case 'j': push(memo(uint(4))); break;                                    // LONG_BINGET
        case ')': push(make(Value::kTuple)); break;                              // EMPTY_TUPLE
        case 0x85: case 0x86: case 0x87: {                                       // TUPLE1..3
          auto t = make(Value::kTuple);
          t->items.resize(op - 0x84);
          for (auto it = t->items.rbegin(); it != t->items.rend(); ++it) *it = pop();
          push(t);
          break;
        }
        case 't': {                                        // TUPLE
          auto t = make(Value::kTuple);
          t->items = popmark();
          push(t);
          break;
        }
        case ']': push(make(Value::kList)); break;         // EMPTY_LIST
        case 'l': {                                        // LIST
          auto l = make(Value::kList);
          l->items = popmark();
          push(l);
          break;
        }
        case 'a': {                                        // APPEND
          auto v = pop();
          list_of(top())->items.push_back(v);
          break;
        }
        case 'e': {                                        // APPENDS
          auto vs = popmark();
          auto& l = list_of(top())->items;
          l.insert(l.end(), vs.begin(), vs.end());
          break;
        }
        case '}': push(make(Value::kDict)); break;         // EMPTY_DICT
        case 'd': {                                        // DICT
          auto d = make(Value::kDict);
          set_items(d, popmark());
          push(d);
          break;
        }
        case 's': {                                        // SETITEM
          auto v = pop();
          auto k = pop();
          set_items(top(), {k, v});
          break;
        }
        case 'u': {                                        // SETITEMS: into the dict below the mark
          const auto kv = popmark();
          set_items(top(), kv);
          break;
        }
        case 'Q': push(storage(pop())); break;             // BINPERSID
        case 'R': {                                        // REDUCE
          auto args = pop();
          auto fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 0x81: {                                       // NEWOBJ: an object we need not read
          pop();
          pop();
          push(make(Value::kObject));
          break;
        }
        case 'b': pop(); break;                            // BUILD: state of an object (an OrderedDict's _metadata)
        default:
          throw error_at(where_, fmt::format("pickle opcode 0x{:02x} at byte {} is not one a state dict uses", op, pos_ - 1));
      }
    }
  }

 private:
  char byte() {
    if (pos_ >= p_.size()) throw error_at(where_, "the pickle ends early");
    return p_[pos_++];
  }
  std::string_view take(std::uint64_t n) {
    if (n > p_.size() - pos_) throw error_at(where_, "the pickle ends early");
    auto v = p_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  std::uint64_t uint(int bytes) {
    std::uint64_t v = 0;
    auto b = take(static_cast<std::uint64_t>(bytes));
    for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<std::uint8_t>(b[static_cast<std::size_t>(i)]);
    return v;
  }
  std::int64_t long1(int n) {
    if (n > 8) throw error_at(where_, "an integer wider than 64 bits in the pickle");
    auto b = take(static_cast<std::uint64_t>(n));
    std::int64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = static_cast<std::int64_t>(static_cast<std::uint64_t>(v) << 8 | static_cast<std::uint8_t>(b[static_cast<std::size_t>(i)]));
    if (n > 0 && n < 8 && (static_cast<std::uint8_t>(b[static_cast<std::size_t>(n - 1)]) & 0x80)) v -= std::int64_t{1} << (8 * n);  // two's complement
    return v;
  }
  std::string line() {
    const std::size_t end = p_.find('\n', pos_);
    if (end == std::string_view::npos) throw error_at(where_, "the pickle ends early");
    std::string s(p_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  static Ref integer(std::int64_t i) {
    auto v = make(Value::kInt);
    v->i = i;
    return v;
  }
  static Ref string(std::string_view s) {
    auto v = make(Value::kString);
    v->s = std::string(s);
    return v;
  }
  void push(Ref v) { stack_.push_back(std::move(v)); }
  Ref top() {
    if (stack_.empty()) throw error_at(where_, "malformed pickle (empty stack)");
    return stack_.back();
  }
  Ref pop() {
    Ref v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<Ref> popmark() {
    std::vector<Ref> items;
    for (;;) {
      Ref v = pop();
      if (v->kind == Value::kMark) break;
      items.insert(items.begin(), v);
    }
    return items;
  }
  Ref memo(std::uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) throw error_at(where_, "malformed pickle (unknown memo key)");
    return it->second;
  }
  Ref list_of(const Ref& v) {
    if (v->kind != Value::kList) throw error_at(where_, "malformed pickle (append to a non-list)");
    return v;
  }
  void set_items(const Ref& d, const std::vector<Ref>& kv) {
    if (d->kind != Value::kDict) throw error_at(where_, "malformed pickle (items set on a non-dict)");
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) d->dict.emplace_back(kv[i], kv[i + 1]);
  }
  // ('storage', torch.<Type>Storage, key, location, numel) -> the storage's zip entry.
  Ref storage(const Ref& pid) {
    if (pid->kind != Value::kTuple || pid->items.size() < 3 || pid->items[0]->s != "storage" || pid->items[1]->kind != Value::kGlobal)
      throw error_at(where_, "a persistent id that is not a tensor storage");
    auto v = make(Value::kStorage);
    v->s = pid->items[1]->name;
    v->name = archive_ + "/data/" + pid->items[2]->s;
    return v;
  }
  std::vector<std::int64_t> ints(const Ref& t) {
    std::vector<std::int64_t> out;
    for (const auto& x : t->items) {
      if (x->kind != Value::kInt) throw error_at(where_, "a tensor's size or stride is not a tuple of integers");
      out.push_back(x->i);
    }
    return out;
  }
  Ref reduce(const Ref& fn, const Ref& args) {
    if (fn->kind == Value::kGlobal && fn->s == "collections" && fn->name == "OrderedDict") return make(Value::kDict);
    if (fn->kind == Value::kGlobal && fn->s == "torch._utils" && fn->name == "_rebuild_tensor_v2") {
      if (args->items.size() < 4 || args->items[0]->kind != Value::kStorage)
        throw error_at(where_, "_rebuild_tensor_v2 without (storage, offset, size, stride)");
      auto t = make(Value::kTensor);
      t->tensor = {args->items[0]->s, args->items[0]->name, args->items[1]->i, ints(args->items[2]), ints(args->items[3])};
      return t;
    }
    if (fn->kind == Value::kGlobal && fn->s == "torch._utils" && fn->name == "_rebuild_parameter" && !args->items.empty())
      return args->items[0];  // nn.Parameter(tensor, requires_grad, hooks): the tensor
    if (fn->kind == Value::kGlobal && fn->s == "torch.jit._pickle" && fn->name == "restore_type_tag" && !args->items.empty())
      return args->items[0];  // libtorch's pickle_save (segscale's own model.pt): the dict with its TorchScript type
    return make(Value::kObject);
  }

  std::string_view p_;
  std::size_t pos_ = 0;
  std::string archive_, where_;
  std::vector<Ref> stack_;
  std::map<std::uint64_t, Ref> memo_;
};

// A stored entry's bytes, found in an already-read directory.
std::string_view entry_view(const std::map<std::string, ZipEntry>& dir, const std::vector<char>& file, const std::string& name,
                            const std::string& where) {
  const auto it = dir.find(name);
  if (it == dir.end()) throw error_at(where, fmt::format("entry {} is missing", name));
  const ZipEntry& e = it->second;
  if (e.method != 0) throw error_at(where, fmt::format("entry {} is compressed (torch.save stores entries uncompressed)", name));
  const std::size_t h = e.local_header;
  if (h + 30 > file.size() || le(file, h, 4) != 0x04034b50) throw error_at(where, fmt::format("entry {}: broken local header", name));
  const std::size_t data = h + 30 + le(file, h + 26, 2) + le(file, h + 28, 2);
  if (data + e.size > file.size()) throw error_at(where, fmt::format("entry {} runs past the end of the file", name));
  return {file.data() + data, e.size};
}

}  // namespace

TorchSaveKind torch_save_kind(const std::vector<char>& file) {
  if (file.size() < 4 || le(file, 0, 4) != 0x04034b50) return TorchSaveKind::kNotZip;
  try {
    for (const auto& [name, e] : zip_directory(file, "")) {
      const std::size_t slash = name.find('/');
      const std::string rest = slash == std::string::npos ? name : name.substr(slash + 1);
      if (rest == "constants.pkl" || rest.starts_with("code/")) return TorchSaveKind::kScriptArchive;
    }
  } catch (const Error&) {
    return TorchSaveKind::kNotZip;
  }
  return TorchSaveKind::kPickle;
}

std::string_view zip_entry(const std::vector<char>& file, const std::string& name, const std::string& where) {
  return entry_view(zip_directory(file, where), file, name, where);
}

std::vector<std::pair<std::string, StoredTensor>> read_state_dict_entries(const std::vector<char>& file, const std::string& where) {
  const auto dir = zip_directory(file, where);
  std::string pkl_name;
  for (const auto& [name, e] : dir)
    if (name.size() > 9 && name.ends_with("/data.pkl") && name.find('/') == name.size() - 9) pkl_name = name;
  if (pkl_name.empty()) throw error_at(where, "no <archive>/data.pkl in the zip: not a torch.save file");
  Ref v = Unpickler(entry_view(dir, file, pkl_name, where), pkl_name.substr(0, pkl_name.size() - 9), where).run();
  const auto dict_at = [](const Ref& d, const char* key) -> Ref {
    for (const auto& [k, x] : d->dict)
      if (k->kind == Value::kString && k->s == key && x->kind == Value::kDict) return x;
    return nullptr;
  };
  if (v->kind == Value::kDict)
    for (const char* wrapper : {"state_dict", "model_state_dict", "network_weights"})  // network_weights: nnU-Net's checkpoint_*.pth
      if (Ref inner = dict_at(v, wrapper)) {
        v = inner;
        break;
      }
  if (v->kind != Value::kDict)
    throw error_at(where, "expected a dict of name -> tensor (torch.save(model.state_dict()), or {\"state_dict\": ...})");
  std::vector<std::pair<std::string, StoredTensor>> out;
  for (const auto& [k, x] : v->dict) {
    if (k->kind != Value::kString || x->kind != Value::kTensor)
      throw error_at(where, fmt::format("expected a dict of name -> tensor; entry {} is not a tensor", k->kind == Value::kString ? k->s : "?"));
    out.emplace_back(k->s, x->tensor);
    out.back().second.data = entry_view(dir, file, x->tensor.record, where);
  }
  return out;
}

}  // namespace segscale::model
