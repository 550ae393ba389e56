#pragma once
// nnU-Net's training loss for region datasets (BraTS's whole tumour / tumour core / enhancing tumour), as
// nnunetv2 2.8.1's nnUNetTrainer._build_loss builds it: DC_and_BCE_loss = BCEWithLogitsLoss (mean) plus
// MemoryEfficientSoftDiceLoss(sigmoid, do_bg=True, smooth=1e-5, batch_dice from the plan), weights 1 and 1, the
// Dice term negative (-dc, as nnU-Net logs it) and its sums in float32; and its DeepSupervisionWrapper with
// weights 1/2^i, the lowest resolution's 0, normalised to sum 1.
#include <vector>

#include "model/torch_compat.h"

namespace segscale::model {

// logits, target: [N, R, ...] (target 0/1 per region). Differentiable in logits.
torch::Tensor nnunet_dc_bce(const torch::Tensor& logits, const torch::Tensor& target, bool batch_dice, double smooth = 1e-5);

// nnU-Net's deep-supervision weights for `outputs` heads (highest resolution first): 1/2^i, the last 0, over their sum.
std::vector<double> nnunet_deep_supervision_weights(std::size_t outputs);

// The label at each head's resolution, as batchgeneratorsv2's DownsampleSegForDSTransform makes nnU-Net's targets
// (nearest-exact interpolation of the region channels); the first head's size is the label's own.
std::vector<torch::Tensor> nnunet_deep_supervision_targets(const torch::Tensor& target, const std::vector<torch::Tensor>& outputs);

// sum_i w_i * nnunet_dc_bce(outputs[i], targets[i]) over the heads whose weight is not 0 (DeepSupervisionWrapper);
// targets[i] at outputs[i]'s resolution (nnU-Net downsamples the segmentation, nearest, per head).
torch::Tensor nnunet_deep_supervision_loss(const std::vector<torch::Tensor>& outputs, const std::vector<torch::Tensor>& targets,
                                           bool batch_dice, double smooth = 1e-5);

}  // namespace segscale::model
