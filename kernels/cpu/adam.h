// The Adam optimiser step over one parameter tensor (see
// kernels/common/adam_math.h for the math, layers/optim.h for the optimiser).
#pragma once
#include <cstdint>

#include "kernels/common/adam_math.h"

namespace engine::cpu {

// For i < n: adam_update(param[i], grad[i], exp_avg[i], exp_avg_sq[i], c).
// All four arrays hold n floats; param, exp_avg and exp_avg_sq are updated
// in place. Each element is independent, so the result does not depend on
// the number of threads.
void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
               const AdamStepConstants& c);

}  // namespace engine::cpu
