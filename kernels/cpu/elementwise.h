// Elementwise binary ops with the engine's (deliberately small) broadcasting.
//
// Both operands and the output are viewed as a [rows, cols] matrix. An
// operand's element for output position (r, c) sits at
//     r * row_stride + c * col_stride
// so one struct describes every supported case:
//   full operand            {cols, 1}
//   per-row ([N,C,1,1])     {1, 0}     constant along a row
//   scalar                  {0, 0}
// Backward functions accumulate (+=) into the gradients and reduce over the
// broadcast positions.
#pragma once
#include <cstdint>

namespace engine::cpu {

struct BroadcastOperand {
  int64_t row_stride;
  int64_t col_stride;
};

// out[r, c] = a[r, c] (+ - *) b[r, c]; out is a full [rows, cols] matrix.
void add_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols);
void sub_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols);
void mul_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols);

// grad[layout] += sign * sum over the positions that share it of
//                 grad_out[r, c] * (factor ? factor[r, c] : 1)
// This is the backward of add (sign 1, no factor), sub (b: sign -1) and
// mul (factor = the other operand). Reductions run in double over fixed
// blocks, so the result does not depend on the thread count.
void broadcast_backward(const float* grad_out, const float* factor, BroadcastOperand factor_layout, float sign,
                        float* grad, BroadcastOperand grad_layout, int64_t rows, int64_t cols);

// out[i] = a[i] * factor + offset, for i < n.
void affine_forward(const float* a, float factor, float offset, float* out, int64_t n);
// grad_a[i] += grad_out[i] * factor.
void affine_backward(const float* grad_out, float factor, float* grad_a, int64_t n);

// dst[i] += src[i].
void accumulate(float* dst, const float* src, int64_t n);

}  // namespace engine::cpu
