#include "kernels/cpu/adam.h"

namespace engine::cpu {

void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
               const AdamStepConstants& c) {
  // Memory-bound: 16 bytes read and 12 written per element. Small tensors
  // (biases, BatchNorm parameters) are not worth waking the thread team for.
#pragma omp parallel for simd schedule(static) if (parallel : n > 32768)  // a plain if() would also switch off simd
  for (int64_t i = 0; i < n; ++i) adam_update(param[i], grad[i], exp_avg[i], exp_avg_sq[i], c);
}

}  // namespace engine::cpu
