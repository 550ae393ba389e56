// The label-map table, shown by the help of every command that takes --label-map (and only there).
#include <string>

#include "cli/commands.h"

namespace segscale::cli {

std::string label_map_help() {
  return "Label-map presets (--label-map; default: the data's numbering, from its dataset.json or BraTS file names, or the store or run\n"
         "the data came from; the command prints the map it uses and why). The three channels are TC (tumour core), WT (whole\n"
         "tumour) and ET (enhancing tumour), each a set of label values:\n"
         "  blog     TC={2,3} WT={1,2,3} ET={2}  MSD Task01 files as the case study (AWS blog) and MONAI's BraTS tutorial read\n"
         "                                       them: its channel conversion was written for BraTS numbering, so ET is label 2\n"
         "                                       (MSD's non-enhancing tumour). Kept to reproduce the case study's numbers; the\n"
         "                                       default reading of an MSD dataset.json.\n"
         "  msd      TC={2,3} WT={1,2,3} ET={3}  what MSD's dataset.json says: 1 edema, 2 non-enhancing tumour, 3 enhancing\n"
         "  brats21  TC={1,4} WT={1,2,4} ET={4}  BraTS 2018-2021: 1 necrotic/non-enhancing core, 2 edema, 4 enhancing\n"
         "  brats23  TC={1,3} WT={1,2,3} ET={3}  BraTS 2023 glioma: 1 necrotic core, 2 edema, 3 enhancing";
}

}  // namespace segscale::cli
