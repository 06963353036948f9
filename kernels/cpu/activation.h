// Activation functions, elementwise: out[i] = f(x[i]).
// GELU (exact, erf form). The backward functions WRITE the gradient (=):
// grad_x is a fresh buffer (the op allocates it uninitialised), so
// accumulating into zeros would cost a memset and an extra read of grad_x
// for nothing (autograd sums gradients that meet at a tensor).
//
// Two implementations of the same formulas:
//   * gelu_forward / gelu_backward: the kernels the ops call. They evaluate
//     erf and exp with the branch-free float approximations of
//     kernels/cpu/fast_math.h (within ~1 ulp, like erff and expf), which the
//     compiler vectorises: ~10x faster than calling erff per element.
//   * gelu_forward_reference / gelu_backward_reference: the readable
//     reference, per element math::gelu / math::gelu_derivative from
//     kernels/common/gelu_math.h (glibc's scalar erff and expf; the CUDA
//     kernels use the same header). Kept for tests and benchmarks.
#pragma once
#include <cstdint>

namespace engine::cpu {

// y[i] = gelu(x[i]) = 0.5 x (1 + erf(x / sqrt 2)), for i < n.
void gelu_forward(const float* x, float* y, int64_t n);

// grad_x[i] = grad_y[i] * gelu'(x[i]),  gelu'(x) = Phi(x) + x phi(x), for i < n.
void gelu_backward(const float* x, const float* grad_y, float* grad_x, int64_t n);

// The same two functions with libm's erff and expf (the reference).
void gelu_forward_reference(const float* x, float* y, int64_t n);
void gelu_backward_reference(const float* x, const float* grad_y, float* grad_x, int64_t n);

}  // namespace engine::cpu
