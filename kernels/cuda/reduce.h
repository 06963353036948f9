// CUDA twins of kernels/cpu/reduce.h: full reductions and the mean-squared-
// error loss, same functions and arguments, device pointers, current stream.
// Scalars (out, grad_out) are one-element DEVICE arrays: nothing here waits
// for or talks to the host.
//
// Sums run in double over a fixed partition of the flat index (chunks that
// depend only on n, each summed by one block with a fixed tree; then the
// chunk sums by a fixed tree): the same bits on every run. They differ from
// the CPU's blocked loop only in the order of double additions, far below
// float resolution.
#pragma once
#include <cstdint>

namespace engine::cuda {

// out[0] = sum_i x[i], i < n.
void sum_forward(const float* x, float* out, int64_t n);
// grad_x[i] += grad_out[0] * factor  (factor 1 for sum, 1/n for mean).
void sum_backward(const float* grad_out, float factor, float* grad_x, int64_t n);

// out[0] = (1/n) sum_i (pred[i] - target[i])^2.
void mse_forward(const float* pred, const float* target, float* out, int64_t n);
// grad_pred += 2 (pred - target) / n * grad_out[0];  grad_target -= the same.
// Either gradient pointer may be null.
void mse_backward(const float* pred, const float* target, const float* grad_out, float* grad_pred,
                  float* grad_target, int64_t n);

}  // namespace engine::cuda
