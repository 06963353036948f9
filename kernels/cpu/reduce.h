// Full reductions and the mean-squared-error loss.
// Sums run in double over fixed blocks of the flat index, then over the
// block sums in order: the result does not depend on the thread count.
#pragma once
#include <cstdint>

namespace engine::cpu {

// *out = sum_i x[i], i < n.
void sum_forward(const float* x, float* out, int64_t n);
// grad_x[i] += grad_out[0] * factor  (factor 1 for sum, 1/n for mean).
void sum_backward(const float* grad_out, float factor, float* grad_x, int64_t n);

// *out = (1/n) sum_i (pred[i] - target[i])^2.
void mse_forward(const float* pred, const float* target, float* out, int64_t n);
// d/dpred = 2 (pred - target) / n * grad_out[0];  d/dtarget = the negative.
// Either gradient pointer may be null.
void mse_backward(const float* pred, const float* target, const float* grad_out, float* grad_pred,
                  float* grad_target, int64_t n);

}  // namespace engine::cpu
