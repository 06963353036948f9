// The fully connected layer on the GPU: y = x W^T + b, as GEMM calls on
// either engine of engine_select.h (gemm_engine(): cuBLAS or our own tiled
// GEMM), plus two small kernels of our own for the bias.
//
// Same names, arguments and contract as kernels/cpu/linear.h, on device pointers:
//   x      [batch, in_features]
//   weight [out_features, in_features]   (PyTorch's nn.Linear layout)
//   bias   [out_features], or null for none
//   y      [batch, out_features]
// Forward: y = bias broadcast over the rows (or 0), then y += x W^T (one GEMM, beta = 1).
// Backward ACCUMULATES (+=); any gradient pointer may be null:
//   grad_x      [batch, in]  += grad_y W                (GEMM)
//   grad_weight [out, in]    += grad_y^T x              (GEMM whose K is the batch)
//   grad_bias   [out]        += sum over n of grad_y[n, :] (one thread per column, rows in order)
// Deterministic on both engines. Queued on the current stream.
#pragma once
#include <cstdint>

namespace engine::cuda {

void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t batch,
                    int64_t in_features, int64_t out_features);

void linear_backward(const float* x, const float* weight, const float* grad_y, float* grad_x, float* grad_weight,
                     float* grad_bias, int64_t batch, int64_t in_features, int64_t out_features);

// The GEMM of the selected engine (gemm_engine()): cublas_gemm or our gemm.
void engine_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace engine::cuda
