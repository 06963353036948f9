#include "kernels/cpu/activation.h"

#include "kernels/common/gelu_math.h"

namespace engine::cpu {

// Each element is independent: a flat loop split evenly across threads.
// Same bits whatever the thread count (no reduction).

void gelu_forward(const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] = math::gelu(x[i]);
}

void gelu_backward(const float* x, const float* grad_y, float* grad_x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) grad_x[i] += grad_y[i] * math::gelu_derivative(x[i]);
}

}  // namespace engine::cpu
