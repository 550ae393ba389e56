// segscale._core: the store, the loader, the transforms and prep for Python, over the libtorch-free core.
// Errors: segscale::UsageError -> ValueError, segscale::Error -> segscale.Error (a RuntimeError), with the
// same one-line messages the CLI prints.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/vector.h>

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/catalog.h"
#include "env/job_environment.h"
#include "env/world.h"
#include "io/json_file.h"
#include "loader/host_loader.h"
#include "loader/sample_decode.h"
#include "prep/prep.h"
#include "python/arrays.h"
#include "store/store.h"
#include "transforms/intensity.h"
#include "transforms/label_map_choice.h"
#include "transforms/load.h"
#include "transforms/rng.h"
#include "util/error.h"

namespace nb = nanobind;
using namespace nb::literals;
using namespace segscale;

namespace {

PyObject* g_error = nullptr;  // segscale.Error

nb::object json_to_python(const nlohmann::json& j) { return nb::module_::import_("json").attr("loads")(j.dump()); }

nlohmann::json python_to_json(nb::handle obj) {
  return nlohmann::json::parse(nb::cast<std::string>(nb::module_::import_("json").attr("dumps")(obj)));
}

std::vector<std::size_t> volume_shape(const transforms::Volume& v) {
  return {static_cast<std::size_t>(v.channels), static_cast<std::size_t>(v.size[0]), static_cast<std::size_t>(v.size[1]),
          static_cast<std::size_t>(v.size[2])};
}

template <typename T>
nb::object grid_array(transforms::Grid<T> g) {
  auto shape = std::vector<std::size_t>{static_cast<std::size_t>(g.channels), static_cast<std::size_t>(g.size[0]),
                                        static_cast<std::size_t>(g.size[1]), static_cast<std::size_t>(g.size[2])};
  auto owner = std::make_shared<transforms::Grid<T>>(std::move(g));
  return nb::cast(python::share_array(owner->data.data(), shape, owner));
}

nb::object affine_array(const Affine& a) {
  auto owner = std::make_shared<std::array<double, 16>>();
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) (*owner)[static_cast<std::size_t>(r * 4 + c)] = a.m[r][c];
  return nb::cast(python::share_array(owner->data(), {4, 4}, owner));
}

std::vector<std::filesystem::path> paths_of(const std::vector<std::string>& images) {
  std::vector<std::filesystem::path> out(images.begin(), images.end());
  if (out.empty()) throw UsageError("images: give at least one file");
  return out;
}

transforms::Pipeline pipeline_of(nb::handle pipeline) {
  if (pipeline.is_none()) return transforms::Pipeline::case_study();
  if (nb::isinstance<nb::str>(pipeline)) return transforms::Pipeline::from_file(nb::cast<std::string>(pipeline));
  try {
    return transforms::Pipeline::from_json(python_to_json(pipeline), "pipeline");
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(e.what());  // a bad pipeline argument is a bad argument
  }
}

class Store {
 public:
  explicit Store(const std::string& path) : path_(path), reader_(std::make_shared<store::StoreReader>(path)) {}
  std::size_t size() const { return reader_->samples().size(); }
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (const auto& s : reader_->samples()) k.push_back(s.key);
    return k;
  }
  nb::object manifest() const { return json_to_python(reader_->manifest()); }
  nb::dict get(std::int64_t i) const {
    const std::int64_t n = static_cast<std::int64_t>(size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw nb::index_error(fmt::format("sample index {} out of range for a store of {}", i, n).c_str());
    const auto& ref = reader_->samples()[static_cast<std::size_t>(i)];
    transforms::Sample s = loader::decode_sample(reader_->read(static_cast<std::size_t>(i)),
                                                 fmt::format("{}, sample {}", store::shard_file(ref.shard), ref.key));
    nb::dict d;
    d["key"] = ref.key;
    d["case_key"] = ref.case_key;
    d["affine"] = affine_array(s.image.affine);
    d["draws"] = json_to_python(s.draws);
    d["image"] = grid_array(std::move(s.image));
    if (s.label) d["label"] = grid_array(std::move(*s.label));
    return d;
  }
  nb::dict get_key(const std::string& key) const {
    const auto& samples = reader_->samples();
    for (std::size_t i = 0; i < samples.size(); ++i)
      if (samples[i].key == key) return get(static_cast<std::int64_t>(i));
    throw nb::key_error(key.c_str());
  }
  std::vector<std::string> verify() const { return store::verify_store(path_); }
  const std::shared_ptr<const store::StoreReader>& reader() const { return reader_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<const store::StoreReader> reader_;
};

class Loader {
 public:
  Loader(const Store& store, int batch_size, std::uint64_t seed, std::optional<int> rank, std::optional<int> world_size, bool shuffle,
         bool drop_last, int threads, int prefetch) {
    if (batch_size < 1) throw UsageError(fmt::format("batch_size must be at least 1 (got {})", batch_size));
    if (threads < 1) throw UsageError(fmt::format("threads must be at least 1 (got {})", threads));
    if (prefetch < 1) throw UsageError(fmt::format("prefetch must be at least 1 (got {})", prefetch));
    if (rank.has_value() != world_size.has_value()) throw UsageError("give both rank and world_size, or neither");
    env::World world;
    if (!rank) {  // from the launcher's environment, as segscale train reads it
      if (auto w = env::world_from_job(env::JobEnvironment::from_process())) world = *w;
    } else {
      world.rank = *rank;
      world.size = *world_size;
    }
    if (world.size < 1 || world.rank < 0 || world.rank >= world.size)
      throw UsageError(fmt::format("rank {} is not in a world of size {}", world.rank, world.size));
    loader::HostLoaderOptions o;
    o.batch = batch_size;
    o.seed = seed;
    o.rank = world.rank;
    o.world = world.size;
    o.shuffle = shuffle;
    o.drop_last = drop_last;
    o.threads = threads;
    o.prefetch = prefetch;
    const auto& reader = *store.reader();
    o.mode = loader::training_mode(reader);
    o.pipeline = transforms::Pipeline::from_json(reader.manifest()["settings"]["pipeline"], store.path() + "/manifest.json");
    std::vector<std::size_t> all(reader.samples().size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    host_ = std::make_unique<loader::HostLoader>(store.reader(), std::move(all), std::move(o));
  }

  void set_epoch(std::int64_t e) {
    if (e < 0) throw UsageError(fmt::format("epoch must be non-negative (got {})", e));
    epoch_ = e;
  }
  std::int64_t epoch() const { return epoch_; }
  std::int64_t len() const { return host_->batches_per_epoch(); }
  int rank() const { return host_->options().rank; }
  int world_size() const { return host_->options().world; }
  void start() {
    nb::gil_scoped_release release;
    host_->start_epoch(epoch_);
  }
  nb::dict next() {
    std::optional<loader::HostBatch> b;
    {
      nb::gil_scoped_release release;
      b = host_->next();
    }
    if (!b) throw nb::stop_iteration();
    auto owner = std::make_shared<loader::HostBatch>(std::move(*b));
    last_addresses_ = {reinterpret_cast<std::uintptr_t>(owner->image.data()), reinterpret_cast<std::uintptr_t>(owner->label.data())};
    nb::dict d;
    d["image"] = python::share_array(owner->image.data(), python::dims(owner->image_shape), owner);
    d["label"] = python::share_array(owner->label.data(), python::dims(owner->label_shape), owner);
    d["keys"] = nb::cast(owner->keys);
    d["index"] = owner->index;
    return d;
  }
  std::pair<std::uintptr_t, std::uintptr_t> last_addresses() const { return last_addresses_; }

 private:
  std::unique_ptr<loader::HostLoader> host_;
  std::int64_t epoch_ = 0;
  std::pair<std::uintptr_t, std::uintptr_t> last_addresses_{0, 0};
};

nb::dict read_nifti(const std::vector<std::string>& images) {
  transforms::Volume v;
  {
    auto paths = paths_of(images);
    nb::gil_scoped_release release;
    v = transforms::load_image(paths);
  }
  nb::dict d;
  d["affine"] = affine_array(v.affine);
  d["image"] = grid_array(std::move(v));
  return d;
}

nb::list apply(const std::vector<std::string>& images, std::optional<std::string> label, std::uint64_t seed,
               int copies, nb::handle pipeline, std::optional<std::string> key) {
  if (copies < 1) throw UsageError(fmt::format("copies must be at least 1 (got {})", copies));
  transforms::Pipeline pipe = pipeline_of(pipeline);
  if (label) {  // as `segscale apply`: the label file's data decides the numbering unless the pipeline names an allowed one
    const data::Numbering n = data::label_preset_for_file(*label);
    pipe.label_map = transforms::choose_label_map({"", &pipe, "pipeline", n.preset, n.reason, *label, n.also}).name;
  }
  const auto paths = paths_of(images);
  const std::string case_key = key ? *key : data::case_key_from_path(paths.front());
  std::vector<transforms::Sample> out;
  {
    nb::gil_scoped_release release;
    const auto& map = data::label_map_preset(pipe.label_map);
    transforms::Sample loaded;
    loaded.image = transforms::load_image(paths);
    if (label) loaded.label = transforms::load_label(*label, map);
    transforms::Sample cached = transforms::run_cached_stage(pipe, std::move(loaded));
    for (int c = 0; c < copies; ++c) {  // as `segscale apply --rng sample`: keyed by (seed, case, copy)
      transforms::SampleRng rng(seed, case_key, static_cast<std::uint64_t>(c));
      transforms::Sample s = transforms::run_random_stage(pipe, cached, rng);
      if (s.label) s.label = transforms::label_channels_u8(*s.label, map);
      out.push_back(std::move(s));
    }
  }
  nb::list result;
  for (auto& s : out) {
    nb::dict d;
    d["affine"] = affine_array(s.image.affine);
    d["draws"] = json_to_python(s.draws);
    d["image"] = grid_array(std::move(s.image));
    if (s.label) d["label"] = grid_array(std::move(*s.label));
    result.append(d);
  }
  return result;
}

nb::object prep_job(const std::string& data, const std::string& out, bool cache, int copies, int workers, std::uint64_t seed,
                std::optional<std::string> pipeline, std::optional<std::string> label_map, const std::string& dtype, bool skip_bad,
                bool quiet) {
  if (cache == (copies > 0)) throw UsageError("give exactly one of cache=True or copies=N");
  if (copies < 0) throw UsageError(fmt::format("copies must be at least 1 (got {})", copies));
  if (workers < 0) throw UsageError(fmt::format("workers must be non-negative (got {})", workers));
  prep::PrepOptions o;
  o.data = data;
  o.out = out;
  o.cache = cache;
  o.copies = copies;
  o.workers = workers;
  o.seed = seed;
  if (pipeline) o.pipeline = *pipeline;
  if (label_map) o.label_map = *label_map;
  o.image_dtype = dtype;
  o.skip_bad = skip_bad;
  o.quiet = quiet;
  prep::PrepResult r;
  {
    nb::gil_scoped_release release;
    r = prep::run_prep(o);
  }
  nlohmann::json j{{"samples", r.samples}, {"cases", r.cases}, {"bytes", r.bytes}, {"shards_written", r.shards_written},
                   {"seconds", r.seconds}, {"finalized", r.finalized}};
  if (r.finalized) j["manifest"] = r.manifest;
  return json_to_python(j);
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "segscale's C++ core: sample store, loader, transforms, prep (libtorch-free)";
  g_error = PyErr_NewException("segscale.Error", PyExc_RuntimeError, nullptr);
  m.attr("Error") = nb::handle(g_error);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const UsageError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });

  nb::class_<Store>(m, "Store")
      .def(nb::init<const std::string&>(), "path"_a)
      .def("__len__", &Store::size)
      .def_prop_ro("keys", &Store::keys)
      .def_prop_ro("manifest", &Store::manifest)
      .def_prop_ro("path", &Store::path)
      .def("__getitem__", &Store::get, "index"_a)
      .def("__getitem__", &Store::get_key, "key"_a)
      .def("verify", &Store::verify,
           "Checks every shard member by member (tar structure, CRC-32C, npy headers, counts against the manifest), as "
           "`segscale verify STORE`. Returns a list of problems, one line each, e.g. \"shard-000001.tar: member "
           "X.image.npy: CRC-32C mismatch ...\"; an empty list, [], means no problems: the store is sound. Rerunning the prep that "
           "made the store repairs it.");

  nb::class_<Loader>(m, "Loader")
      .def(nb::init<const Store&, int, std::uint64_t, std::optional<int>, std::optional<int>, bool, bool, int, int>(), "store"_a,
           "batch_size"_a = 2, "seed"_a = 0, "rank"_a = nb::none(), "world_size"_a = nb::none(), "shuffle"_a = true, "drop_last"_a = false,
           "threads"_a = 2, "prefetch"_a = 4)
      .def("set_epoch", &Loader::set_epoch, "epoch"_a)
      .def_prop_ro("epoch", &Loader::epoch)
      .def_prop_ro("rank", &Loader::rank)
      .def_prop_ro("world_size", &Loader::world_size)
      .def("__len__", &Loader::len)
      .def("_start", &Loader::start)
      .def("_next", &Loader::next)
      .def("_last_addresses", &Loader::last_addresses);

  m.def("read_nifti", &read_nifti, "images"_a);
  m.def("apply", &apply, "images"_a, "label"_a = nb::none(), "seed"_a = 0, "copies"_a = 1, "pipeline"_a = nb::none(), "key"_a = nb::none());
  m.def("prep", &prep_job, "data"_a, "out"_a, "cache"_a = true, "copies"_a = 0, "workers"_a = 0, "seed"_a = 0, "pipeline"_a = nb::none(),
        "label_map"_a = nb::none(), "dtype"_a = "float32", "skip_bad"_a = false, "quiet"_a = false);
}
