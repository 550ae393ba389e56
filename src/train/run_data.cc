#include "train/run_data.h"

#include <fmt/format.h>

#include "transforms/pipeline_presets.h"

#include "util/error.h"

namespace segscale::train {
using nlohmann::json;

RunData open_run_data(const TrainOptions& o, const transforms::Pipeline* fallback_pipeline) {
  RunData d;
  d.source = o.store.empty() ? o.data : o.store;
  if (!o.store.empty()) {
    d.store = std::make_shared<store::StoreReader>(o.store);
    d.settings = d.store->manifest()["settings"];
    d.pipeline = transforms::Pipeline::from_json(d.settings["pipeline"], (o.store / "manifest.json").string());
  } else {
    d.catalog = std::make_shared<data::Catalog>(data::open_catalog(o.data));
    if (!o.pipeline.empty()) {
      d.pipeline = transforms::pipeline_from_arg(o.pipeline.string());  // a preset name or a JSON file
      // A preset's label map is a default: the data's numbering wins (a file's "label_map" is authoritative).
      if (transforms::is_pipeline_preset(o.pipeline.string())) d.pipeline.label_map = d.catalog->label_preset;
    } else {
      d.pipeline = fallback_pipeline ? *fallback_pipeline : transforms::Pipeline::case_study();
      d.pipeline.label_map = d.catalog->label_preset;
    }
    d.settings = {{"mode", "raw"}, {"pipeline", d.pipeline.to_json()}, {"dataset", {{"modalities", d.catalog->modalities}}}};
  }
  d.cache = d.settings.value("mode", "") == "cache";
  d.in_channels = static_cast<int>(d.settings["dataset"]["modalities"].size());
  if (d.in_channels == 0) d.in_channels = 4;
  d.roi = o.val_roi;
  if (d.roi[0] <= 0) {
    // The training patch: the chain's last crop, whichever kind (nnunet's is a pos/neg crop).
    d.roi = {128, 128, 64};
    for (const auto& s : d.pipeline.steps) {
      if (auto* c = std::get_if<transforms::RandCropStep>(&s)) d.roi = c->roi;
      if (auto* c = std::get_if<transforms::RandCropPosNegStep>(&s)) d.roi = c->roi;
      if (auto* c = std::get_if<transforms::CenterCropStep>(&s)) d.roi = c->roi;
    }
  }

  // Split by case; a separate validation store is used whole.
  std::vector<store::SampleRef> refs;
  if (d.store) {
    refs = d.store->samples();
  } else {
    for (const auto& c : d.catalog->training) refs.push_back({c.key, c.key, 0, 0, {}, {}, {}});
  }
  d.split = split_by_case(refs, o.val_store.empty() ? o.val_fraction : 0.0, o.seed, !d.cache);
  d.val_store = d.store;
  if (!o.val_store.empty()) {
    d.val_store = std::make_shared<store::StoreReader>(o.val_store);
    d.split.val.clear();
    for (std::size_t i = 0; i < d.val_store->samples().size(); ++i)
      if (d.val_store->samples()[i].copy == 0) d.split.val.push_back(i);
  }
  if (d.split.train.empty()) throw Error(fmt::format("{}: no training samples left after the validation split", d.source.string()));
  return d;
}

}  // namespace segscale::train
