// Activation functions, elementwise: out[i] = f(x[i]).
// GELU (exact, erf form; the math is in kernels/common/gelu_math.h).
// Backward functions accumulate (+=) into the gradient.
#pragma once
#include <cstdint>

namespace engine::cpu {

// y[i] = gelu(x[i]) = 0.5 x (1 + erf(x / sqrt 2)), for i < n.
void gelu_forward(const float* x, float* y, int64_t n);

// grad_x[i] += grad_y[i] * gelu'(x[i]),  gelu'(x) = Phi(x) + x phi(x), for i < n.
void gelu_backward(const float* x, const float* grad_y, float* grad_x, int64_t n);

}  // namespace engine::cpu
