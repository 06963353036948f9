// CUDA twins of kernels/cpu/elementwise.h: the same functions with the same
// arguments, on device pointers, run on the current stream (stream.h). The
// [rows, cols] broadcasting layouts (BroadcastOperand) are the CPU's; read
// kernels/cpu/elementwise.h for the math, kernels/cuda/elementwise.cu for
// how threads map to elements.
//
// Plus two CUDA-only helpers that the host does with a loop on the CPU:
// fill (Tensor::fill_) and increment_i64 (BatchNorm2d's num_batches_tracked,
// counted on the device so that a training step never waits for the host).
#pragma once
#include <cstdint>

#include "kernels/cpu/elementwise.h"  // BroadcastOperand

namespace engine::cuda {

using cpu::BroadcastOperand;

// out[r, c] = a[r, c] (+ - *) b[r, c]; out is a full [rows, cols] matrix.
void add_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols);
void sub_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols);
void mul_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols);

// grad[layout] += sign * sum over the positions that share it of
//                 grad_out[r, c] * (factor ? factor[r, c] : 1)
// Deterministic: a full gradient is elementwise; a per-row gradient is one
// block per row (fixed tree); a scalar gradient is the two-level fixed
// partition of full_reduce.cuh. No atomics.
void broadcast_backward(const float* grad_out, const float* factor, BroadcastOperand factor_layout, float sign,
                        float* grad, BroadcastOperand grad_layout, int64_t rows, int64_t cols);

// out[i] = a[i] * factor + offset, for i < n (out may equal a).
void affine_forward(const float* a, float factor, float offset, float* out, int64_t n);
// grad_a[i] += grad_out[i] * factor.
void affine_backward(const float* grad_out, float factor, float* grad_a, int64_t n);

// dst[i] += src[i].
void accumulate(float* dst, const float* src, int64_t n);

// out[i] = value, for i < n.
void fill(float* out, float value, int64_t n);
// counter[0] += 1 (one thread; no host round trip).
void increment_i64(int64_t* counter);

}  // namespace engine::cuda
