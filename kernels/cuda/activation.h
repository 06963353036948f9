// CUDA twins of kernels/cpu/activation.h: exact GELU, elementwise, on device
// pointers, current stream. The per-element math is the same function as on
// the CPU (kernels/common/gelu_math.h); CUDA's erff and expf may differ from
// glibc's in the last bit, so CPU and GPU agree to a few ulp, not bitwise.
#pragma once
#include <cstdint>

namespace engine::cuda {

// y[i] = gelu(x[i]) = 0.5 x (1 + erf(x / sqrt 2)), for i < n.
void gelu_forward(const float* x, float* y, int64_t n);

// grad_x[i] = grad_y[i] * gelu'(x[i]),  gelu'(x) = Phi(x) + x phi(x), for i < n (written, not accumulated).
void gelu_backward(const float* x, const float* grad_y, float* grad_x, int64_t n);

}  // namespace engine::cuda
