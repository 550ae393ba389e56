#include "train/run_data.h"

#include <fmt/format.h>

#include <set>

#include "transforms/pipeline_presets.h"

#include "io/file.h"
#include "util/error.h"
#include "util/plural.h"

namespace segscale::train {
using nlohmann::json;

RunData open_run_data(const TrainOptions& o, const transforms::Pipeline* fallback_pipeline) {
  RunData d;
  d.source = o.store.empty() ? o.data : o.store;
  if (!o.store.empty()) {
    d.store = std::make_shared<store::StoreReader>(o.store);
    d.settings = d.store->manifest()["settings"];
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
  d.roi = o.val_roi;
  if (d.roi[0] <= 0) {
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
  if (o.val_mode != "crop" && val_crops_only && !d.val_cases.empty())
    d.warnings.push_back(fmt::format("--val-mode full on a store of augmented crops ({}: prep --copies): validation slides over those crops, "
                                     "not whole volumes; prepare a --cache store for whole-volume validation",
                                     (o.val_store.empty() ? o.store : o.val_store).string()));
  return d;
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
