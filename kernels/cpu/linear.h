// The fully connected layer on the CPU: y = x W^T + b, as GEMM calls.
//
// Shapes (contiguous, row-major float arrays):
//   x      [batch, in_features]
//   weight [out_features, in_features]   (PyTorch's nn.Linear layout)
//   bias   [out_features], or null for none
//   y      [batch, out_features]
//
// Forward, one GEMM with the weight read transposed (no copy is made):
//   y[n, o] = bias[o] + sum_i x[n, i] weight[o, i]
// Backward, given grad_y = dL/dy [batch, out_features]:
//   grad_x      [batch, in]  += grad_y weight          (a GEMM)
//   grad_weight [out, in]    += grad_y^T x             (a GEMM over the batch)
//   grad_bias   [out]        += sum over n of grad_y[n, :]
// Backward ACCUMULATES (+=); any gradient pointer may be null when that
// gradient is not needed (then x, or weight, may be null too: grad_x needs
// only weight, grad_weight only x).
//
// Deterministic: gemm sums in a fixed order whatever the thread count, and
// the bias gradient sums each column over the batch in order, in double.
#pragma once
#include <cstdint>

namespace engine::cpu {

void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t batch,
                    int64_t in_features, int64_t out_features);

void linear_backward(const float* x, const float* weight, const float* grad_y, float* grad_x, float* grad_weight,
                     float* grad_bias, int64_t batch, int64_t in_features, int64_t out_features);

}  // namespace engine::cpu
