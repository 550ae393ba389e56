#pragma once
// Learning-rate schedules, stepped once per epoch (as MONAI's BraTS tutorial steps CosineAnnealingLR and
// nnU-Net its PolyLRScheduler). The rate of an epoch is a pure function of the epoch, so a resumed run
// continues the schedule exactly. libtorch-free.
#include <cstdint>
#include <string>

namespace segscale::train {

struct Schedule {
  std::string kind = "none";  // none | cosine | poly
  std::int64_t epochs = 1;    // the run's length in epochs (T_max of the cosine, max_epochs of the poly)
  std::int64_t warmup_epochs = 0;
  double min_lr = 0;          // the cosine's eta_min
  double poly_power = 0.9;    // nnU-Net's exponent
};

// The learning rate of epoch `epoch` (0-based) for a base rate `base_lr`:
//   none:   base_lr
//   cosine: eta_min + (base_lr - eta_min) (1 + cos(pi e / T_max)) / 2 with T_max = epochs
//           (torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs, eta_min=min_lr) after e scheduler.step()s)
//   poly:   base_lr (1 - e / epochs)^power (nnU-Net's PolyLRScheduler; torch's PolynomialLR(total_iters=epochs))
// With warmup_epochs W > 0, a linear warm-up as MONAI's WarmupCosineSchedule(warmup_steps=W, t_total=epochs)
// (warmup_multiplier 0, stepped per epoch): epochs e < W run at base_lr e / W (0 at the first), then the
// schedule runs over the remaining epochs with e - W in place of e and epochs - W in place of epochs (none:
// the base rate). cosine with a warm-up and min_lr 0 equals WarmupCosineSchedule exactly.
double scheduled_lr(const Schedule& s, double base_lr, std::int64_t epoch);

// Throws UsageError naming the flag: an unknown kind, warm-up epochs < 0 or not below the run's epochs, min_lr < 0.
void check_schedule(const Schedule& s);

}  // namespace segscale::train
