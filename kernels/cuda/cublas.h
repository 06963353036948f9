// cuBLAS behind the engine's GEMM contract.
//
// cublas_gemm has exactly the signature and the semantics of our own
// engine::cuda::gemm (kernels/cuda/gemm.h) and of the CPU's gemm: row-major
// C[M, N] = alpha op(A) op(B) + beta C on device pointers, beta == 0 meaning
// C is write-only, K == 0 giving C = beta C.
//
// cuBLAS is column-major. A row-major [R, C] matrix with leading dimension ld
// is, byte for byte, the column-major [C, R] matrix with the same ld: its
// transpose. So the row-major product C = op(A) op(B) is computed as the
// column-major product C^T = op(B)^T op(A)^T: swap the operands (B first),
// keep each one's transpose flag, and swap M and N. No data moves.
//
// The handle: one per device, created on first use, bound to the current
// stream (stream.h) before every call, with its math mode set from
// allow_tf32() (engine_select.h): CUBLAS_DEFAULT_MATH (plain FP32 FMA) unless
// TF32 is allowed, then CUBLAS_TF32_TENSOR_OP_MATH. The handle gets a fixed
// workspace from the engine's allocator, so that cuBLAS never allocates
// during a call (a requirement for capturing a step into a CUDA graph).
// cuBLAS gives the same bits on every run on the same GPU model.
#pragma once
#include <cstdint>

namespace engine::cuda {

void cublas_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace engine::cuda
