#include "train/run_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <fmt/ranges.h>
#include <set>

#include "store/nnunet_sample.h"

#include "transforms/pipeline_presets.h"

#include "io/file.h"
#include "util/error.h"
#include "util/plural.h"

namespace segscale::train {
using nlohmann::json;

namespace {

// The plan's regions as TC, WT, ET: BraTS's three nested regions (ET inside TC inside WT), in whatever order and
// label values dataset.json gives them (nnU-Net's Dataset137: WT (1, 2, 3), TC (2, 3), ET (3)).
std::vector<std::vector<int>> brats_region_channels(const std::vector<std::vector<int>>& regions, const std::string& where) {
  auto inside = [](const std::vector<int>& a, const std::vector<int>& b) {  // a's labels all in b
    return std::all_of(a.begin(), a.end(), [&](int x) { return std::find(b.begin(), b.end(), x) != b.end(); });
  };
  if (regions.size() == 3) {
    std::vector<std::vector<int>> r = regions;
    std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });  // ET, TC, WT
    if (r[0].size() < r[1].size() && r[1].size() < r[2].size() && inside(r[0], r[1]) && inside(r[1], r[2])) return {r[1], r[2], r[0]};
  }
  std::vector<std::string> parts;
  for (const auto& v : regions) parts.push_back(fmt::format("({})", fmt::join(v, ", ")));
  throw Error(fmt::format("{}: the plan's foreground is {}, not BraTS's three nested tumour regions (ET inside TC inside WT): segscale "
                          "trains nnU-Net's recipe on BraTS region datasets (nnU-Net's Dataset137 form) only so far",
                          where, fmt::join(parts, ", ")));
}

// A store of nnU-Net's preprocessed cases: what the loader, network and loss take from its plan.
RunData::Nnunet nnunet_settings(const nlohmann::json& settings, const std::string& where) {
  RunData::Nnunet n;
  const json& nn = settings.at("nnunet");
  n.plans = nn.at("plans");
  n.configuration = nn.at("configuration").get<std::string>();
  n.dataset_json = nn.value("dataset_json", std::string());
  const json& c = n.plans.at("configurations").at(n.configuration);
  n.regions = brats_region_channels(nn.at("foreground").get<std::vector<std::vector<int>>>(), where);
  n.region_names = {"TC", "WT", "ET"};
  n.use_mask_for_norm = c.at("use_mask_for_norm").get<std::vector<bool>>();
  const auto patch = c.at("patch_size").get<std::vector<std::int64_t>>();
  if (patch.size() != 3) throw Error(fmt::format("{}: configuration {} has a {}-D patch; segscale trains 3-D configurations", where, n.configuration, patch.size()));
  n.patch = {patch[0], patch[1], patch[2]};
  n.batch_size = c.at("batch_size").get<int>();
  n.batch_dice = c.value("batch_dice", false);
  n.arch = c.at("architecture").at("arch_kwargs");
  return n;
}

}  // namespace

RunData open_run_data(const TrainOptions& o, const transforms::Pipeline* fallback_pipeline) {
  RunData d;
  d.source = o.store.empty() ? o.data : o.store;
  if (!o.store.empty()) {
    d.store = std::make_shared<store::StoreReader>(o.store);
    d.settings = d.store->manifest()["settings"];
  }
  if (d.store && d.settings.value("mode", "") == store::kNnunetMode) {
    const std::string where = (o.store / "manifest.json").string();
    try {
      d.nnunet = nnunet_settings(d.settings, where);
    } catch (const json::exception& e) {
      throw Error(fmt::format("{}: an nnU-Net store without a usable plan ({})", where, e.what()));
    }
    if (!o.val_store.empty())
      throw UsageError("--val-store: an nnU-Net store validates on its own held-out cases (--fold or --val-fraction), as nnU-Net does");
    if (!o.label_map.empty()) throw UsageError("--label-map: an nnU-Net store keeps the dataset's own labels; its regions decide TC, WT and ET");
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < 3; ++i) parts.push_back(fmt::format("{} = labels ({})", d.nnunet->region_names[i], fmt::join(d.nnunet->regions[i], ", ")));
    d.label_map_note = fmt::format("nnU-Net's regions from the plan's dataset.json: {}", fmt::join(parts, ", "));
  } else if (!o.store.empty()) {
    d.pipeline = transforms::Pipeline::from_json(d.settings["pipeline"], (o.store / "manifest.json").string());
    // A store holds TC/WT/ET channels already: its map cannot change here, only be confirmed.
    if (!o.label_map.empty() && o.label_map != d.pipeline.label_map)
      throw Error(fmt::format("{}: prepared with label map {} ({}), not --label-map {}: prepare a store with `segscale prep --label-map {}`, "
                              "or drop --label-map",
                              o.store.string(), d.pipeline.label_map, data::label_map_preset(d.pipeline.label_map).describe(),
                              o.label_map, o.label_map));
    d.label_map_note = transforms::LabelMapChoice{d.pipeline.label_map, "the store's (segscale prep chose it)"}.describe();
  } else {
    d.catalog = std::make_shared<data::Catalog>(data::open_catalog(o.data));
    // The recipe's chain, a preset or a file; the data's numbering unless --label-map or the file names one.
    d.pipeline = !o.pipeline.empty() ? transforms::pipeline_from_arg(o.pipeline.string())
                 : fallback_pipeline ? *fallback_pipeline : transforms::Pipeline::case_study();
    const transforms::LabelMapChoice choice = transforms::choose_label_map(
        {o.label_map, &d.pipeline, o.pipeline.string(), d.catalog->label_preset, d.catalog->label_preset_reason, o.data.string(),
         d.catalog->label_preset_also});
    d.pipeline.label_map = choice.name;
    d.label_map_note = choice.describe();
    d.settings = {{"mode", "raw"}, {"pipeline", d.pipeline.to_json()}, {"dataset", {{"modalities", d.catalog->modalities}}}};
  }
  d.cache = d.settings.value("mode", "") == "cache";
  d.in_channels = static_cast<int>(d.settings["dataset"]["modalities"].size());
  if (d.in_channels == 0) d.in_channels = 4;
  if (d.nnunet) d.in_channels = static_cast<int>(d.nnunet->use_mask_for_norm.size());
  d.roi = o.val_roi;
  if (d.roi[0] <= 0 && d.nnunet) {
    d.roi = d.nnunet->patch;
  } else if (d.roi[0] <= 0) {
    // The training patch: the chain's last crop, whichever kind (nnunet's is a pos/neg crop).
    const transforms::Shape3* patch = d.pipeline.crop_roi();
    d.roi = patch ? *patch : transforms::Shape3{128, 128, 64};
  }

  // Split by case; a separate validation store is used whole.
  std::vector<store::SampleRef> refs;
  if (d.store) {
    refs = d.store->samples();
  } else {
    for (const auto& c : d.catalog->training) refs.push_back({c.key, c.key, 0, 0, {}, {}, {}});
  }
  if (!o.fold.empty()) {
    std::set<std::string> keys;
    for (const auto& r : refs) keys.insert(r.case_key);
    const std::vector<std::string> sorted(keys.begin(), keys.end());
    d.folds = o.splits.empty() ? nnunet_kfold(sorted) : read_splits_file(o.splits.string());
    const int fold = o.fold == "all" ? -1 : std::stoi(o.fold);
    d.split = split_by_fold(refs, nnunet_fold(d.folds, sorted, fold), !d.cache,
                            o.splits.empty() ? fmt::format("--fold {}", o.fold) : o.splits.string());
  } else {
    d.split = split_by_case(refs, o.val_store.empty() ? o.val_fraction : 0.0, o.seed, !d.cache);
  }
  d.val_store = d.store;
  if (!o.val_store.empty()) {
    d.val_store = std::make_shared<store::StoreReader>(o.val_store);
    d.split.val.clear();
    for (std::size_t i = 0; i < d.val_store->samples().size(); ++i)
      if (d.val_store->samples()[i].copy == 0) d.split.val.push_back(i);
  }
  if (d.split.train.empty()) throw Error(fmt::format("{}: no training samples left after the validation split", d.source.string()));
  auto cases_of = [](const std::vector<store::SampleRef>& all, const std::vector<std::size_t>& idx) {
    std::set<std::string> keys;
    for (std::size_t i : idx) keys.insert(all[i].case_key);
    return std::vector<std::string>(keys.begin(), keys.end());
  };
  d.train_cases = cases_of(refs, d.split.train);
  d.val_cases = cases_of(d.val_store && !o.val_store.empty() ? d.val_store->samples() : refs, d.split.val);
  if (d.val_cases.empty() && o.val_fraction > 0 && o.val_store.empty())
    d.warnings.push_back(fmt::format("no validation case: --val-fraction {:g} of {} leaves none (model.pt is never written; last.pt holds the "
                                     "weights): raise --val-fraction or give --val-store",
                                     o.val_fraction, plural(static_cast<std::int64_t>(d.train_cases.size()), "case")));
  const bool val_crops_only = d.val_store ? d.val_store->manifest()["settings"].value("mode", "") != "cache" : false;
  if (o.val_mode != "crop" && val_crops_only && !d.val_cases.empty() && !d.nnunet)
    d.warnings.push_back(fmt::format("--val-mode full on a store of augmented crops ({}: prep --copies): validation slides over those crops, "
                                     "not whole volumes; prepare a --cache store for whole-volume validation",
                                     (o.val_store.empty() ? o.store : o.val_store).string()));
  return d;
}

bool same_chain_but_crops(const transforms::Pipeline& a, const transforms::Pipeline& b) {
  auto steps = [](const transforms::Pipeline& p) {
    nlohmann::ordered_json j = p.to_json()["transforms"];
    for (auto& t : j) t.erase("roi");
    return j;
  };
  return steps(a) == steps(b);
}

loader::NnunetLoaderOptions nnunet_loader_options(const TrainOptions& o, const RunData& data, int rank) {
  loader::NnunetLoaderOptions no;
  no.batch = o.batch;
  no.threads = o.loader_threads;
  no.prefetch = 2;
  no.seed = o.seed;
  no.rank = rank;
  no.patch = data.nnunet->patch;
  no.regions = data.nnunet->regions;
  no.use_mask_for_norm = data.nnunet->use_mask_for_norm;
  return no;
}

std::string write_splits(const std::filesystem::path& path, const RunData& data) {
  json folds = json::array({{{"train", data.train_cases}, {"val", data.val_cases}}});
  if (!data.folds.empty()) {
    folds = json::array();
    for (const Fold& f : data.folds) folds.push_back({{"train", f.train}, {"val", f.val}});
  }
  io::write_file_atomic(path, folds.dump(1) + "\n");
  return fmt::format("split: {}, {} -> {}", plural(static_cast<std::int64_t>(data.train_cases.size()), "training case"),
                     plural(static_cast<std::int64_t>(data.val_cases.size()), "validation case"), path.string());
}

}  // namespace segscale::train
