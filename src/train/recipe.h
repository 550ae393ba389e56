#pragma once
// Recipes: named presets that set a run's model, loss, optimiser, schedule, AMP, validation and transform
// chain together, each setting overridable by its own flag. The one table of them is recipe.cc. libtorch-free.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "train/train.h"
#include "transforms/pipeline.h"

namespace segscale::train {

const std::vector<std::string>& recipe_names();  // case-study, monai-brats, nnunet, monai-dynunet

// Sets every option the recipe `o.recipe` names, except those whose flag `given` reports as given on the command
// line (e.g. given("--lr")). Throws UsageError for an unknown recipe, naming the known ones.
void apply_recipe(TrainOptions& o, const std::function<bool(const std::string& flag)>& given);

// What each recipe sets for `flag` (--batch, --lr, --weight-decay, --momentum, --model, --loss, --optimizer,
// --schedule, --val-mode, --sw-overlap), for --help: "case-study 2, monai-brats 1, nnunet 2".
std::string recipe_defaults(const std::string& flag);

// One line for the start of a run: the recipe and what it resolved to (model, loss, optimiser, schedule, AMP,
// validation, chain).
std::string describe_recipe(const TrainOptions& o);

// THE ONE PLACE the trainer looks up a recipe's transform chain by preset name (for --data runs without
// --pipeline; a --store keeps the chain it was prepared with): transforms/pipeline_presets.h's chain of that
// name; nullopt for a name that is not a preset.
std::optional<transforms::Pipeline> pipeline_preset(const std::string& name);

}  // namespace segscale::train
