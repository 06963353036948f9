// Optimisation: Adam, exactly as torch.optim.Adam (amsgrad=False), and the
// ExponentialLR schedule, exactly as torch.optim.lr_scheduler.ExponentialLR.
//
// Adam keeps, per parameter p, two moment tensors shaped like p and a step
// count t, all created at p's first update. One step() does, for each
// parameter whose .grad is defined (the others are skipped, state untouched):
//   t   += 1
//   g    = p.grad + weight_decay * p
//   m    = beta1 m + (1 - beta1) g
//   v    = beta2 v + (1 - beta2) g^2
//   p   -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The bias corrections 1/(1 - beta^t) undo the zero start of m and v: without
// them the first steps would be too small by a factor 1 - beta1 = 0.1.
// The per-element update lives in kernels/common/adam_math.h, shared by the
// CPU kernel (kernels/cpu/adam.cpp) and the CUDA one.
//
// Typical use:
//   Adam optimizer(model.parameters(), 1e-3);
//   ExponentialLR schedule(optimizer, 0.1);
//   for each epoch { for each batch { optimizer.zero_grad(); loss.backward(); optimizer.step(); }
//                    schedule.step(); }
#pragma once
#include <cstdint>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"

namespace engine {

class Adam {
 public:
  // params: the tensors to train (defined F32 leaves that require grad, each
  // at most once), e.g. module.parameters(). They are held by handle, so a
  // later Module::to(device) moves them under the optimiser's feet safely;
  // the moment tensors follow at the next step().
  explicit Adam(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
                double eps = 1e-8, double weight_decay = 0.0);

  // One update of every parameter that has a gradient. Runs under
  // NoGradGuard: the update is not recorded.
  void step();
  // Drops every parameter's gradient (set_to_none=True, PyTorch 2's default).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);
  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  const std::vector<Tensor>& params() const { return params_; }
  // Updates applied so far to parameter `index` (0 before its first update).
  int64_t step_count(std::size_t index) const;

  // The optimiser state, for checkpoint resume, named after PyTorch's
  // optimizer.state_dict()["state"] (i = index in params()):
  //   "state.<i>.step"        [] I64   the step count t of parameter i
  //   "state.<i>.exp_avg"     like p   m
  //   "state.<i>.exp_avg_sq"  like p   v
  // Only parameters that have been updated appear. The tensors are aliases.
  // The learning rate is not included: it is the schedule's state (see
  // ExponentialLR::set_last_epoch) or the caller's.
  NamedTensors state_dict() const;
  // Replaces the whole state by `state` (copies, placed on each parameter's
  // device). Throws, changing nothing, on unknown keys, an index out of
  // range, a parameter with only part of its three entries, or a shape or
  // dtype that does not match.
  void load_state_dict(const NamedTensors& state);

 private:
  struct ParamState {
    int64_t step = 0;
    Tensor exp_avg;     // m, like the parameter; undefined before the first update
    Tensor exp_avg_sq;  // v
  };

  std::vector<Tensor> params_;
  std::vector<ParamState> state_;  // one per parameter
  double lr_, beta1_, beta2_, eps_, weight_decay_;
};

// Decays the learning rate by `gamma` once per step() (once per epoch):
//   lr_epoch = initial_lr * gamma^epoch.
// Like PyTorch, it is applied multiplicatively, lr <- lr * gamma (in double),
// so the values are bit-identical to torch's, and a change of the optimiser's
// lr between steps carries on. Construction is epoch 0 and leaves lr as is.
class ExponentialLR {
 public:
  ExponentialLR(Adam& optimizer, double gamma);

  void step();
  int64_t last_epoch() const { return last_epoch_; }
  double gamma() const { return gamma_; }
  double initial_lr() const { return initial_lr_; }
  // For resume: sets the epoch count and the optimiser's lr to what `epoch`
  // steps from initial_lr give (by the same multiplications).
  void set_last_epoch(int64_t epoch);

 private:
  Adam& optimizer_;
  double gamma_;
  double initial_lr_;
  int64_t last_epoch_ = 0;
};

}  // namespace engine
