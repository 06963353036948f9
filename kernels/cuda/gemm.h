// Our own single-precision GEMM on the GPU: tiled through shared memory with
// register blocking (the tile engine of gemm_tile.cuh). Same contract as the
// CPU's gemm (kernels/cpu/gemm.h), on device pointers:
//
//   C[M, N] = alpha * op(A) op(B) + beta * C          (row-major)
//
// op(A) is [M, K]: A itself (lda >= K) or, with trans_a, the transpose of a
// stored [K, M] matrix (lda >= M). Likewise op(B) is [K, N]: B (ldb >= N) or
// the transpose of a stored [N, K] matrix (ldb >= K). ldc >= N.
// beta == 0 means C is write-only (its old contents, even NaN, are ignored).
// K == 0 gives C = beta * C. Only the M x N elements of C are written.
//
// Queued on the current stream (stream.h) of the current device. Each
// element's sum over K runs in increasing k in one register, so the result is
// the same on every run. Matrices whose index range exceeds 32-bit ints for a
// row (M, N, K, lda, ldb, ldc below 2^31) are accepted; element offsets are
// computed in 64 bits. M is limited to 65535 * 64 rows (the grid's y extent).
#pragma once
#include <cstdint>

namespace engine::cuda {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace engine::cuda
