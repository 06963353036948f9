// The Adam update of one element, shared by the CPU loop (kernels/cpu/adam.cpp)
// and, later, the CUDA kernel: written once, so both backends agree bit for bit.
//
// torch.optim.Adam (amsgrad=False, maximize=False), for step t = 1, 2, ...:
//   g   = grad + weight_decay * param            (L2 penalty folded into the gradient;
//                                                  this is Adam, not AdamW)
//   m   = beta1 * m + (1 - beta1) * g            (first moment, "exp_avg")
//   v   = beta2 * v + (1 - beta2) * g^2          (second moment, "exp_avg_sq")
//   step_size = lr / (1 - beta1^t)               (bias correction of m)
//   denom     = sqrt(v) / sqrt(1 - beta2^t) + eps (bias correction of v, then eps)
//   param    -= step_size * m / denom
//
// The per-step scalars (step_size, sqrt(1 - beta2^t)) depend only on t, so
// the host computes them once per step in double, exactly as PyTorch's
// Python code does, and passes them in AdamStepConstants as floats.
#pragma once
#include <cmath>

#include "kernels/common/host_device.h"

namespace engine {

struct AdamStepConstants {
  float beta1;                  // decay of the first moment, e.g. 0.9
  float one_minus_beta1;        // 1 - beta1, rounded once on the host
  float beta2;                  // decay of the second moment, e.g. 0.999
  float one_minus_beta2;        // 1 - beta2
  float step_size;              // lr / (1 - beta1^t)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
  float eps;                    // added to the denominator, e.g. 1e-8
  float weight_decay;           // L2 coefficient; 0 disables it
};

// Updates one parameter element and its two moments in place.
ENGINE_HOST_DEVICE void adam_update(float& param, float grad, float& exp_avg, float& exp_avg_sq,
                                    const AdamStepConstants& c) {
  if (c.weight_decay != 0.0f) grad = grad + c.weight_decay * param;
  exp_avg = exp_avg * c.beta1 + c.one_minus_beta1 * grad;
  exp_avg_sq = exp_avg_sq * c.beta2 + c.one_minus_beta2 * (grad * grad);
  const float denom = sqrtf(exp_avg_sq) / c.bias_correction2_sqrt + c.eps;
  param = param - c.step_size * (exp_avg / denom);
}

}  // namespace engine
