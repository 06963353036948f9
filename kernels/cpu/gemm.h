// Single-precision matrix multiply, row-major:
//   C[M, N] = alpha * op(A) op(B) + beta * C
// op(A) is [M, K]: A itself (lda >= K) or, with trans_a, the transpose of a
// stored [K, M] matrix (lda >= M). Likewise op(B) is [K, N]: B (ldb >= N) or
// the transpose of a stored [N, K] matrix (ldb >= K). ldc >= N.
// beta == 0 means C is write-only (its old contents, even NaN, are ignored).
//
// gemm() is the fast, cache-blocked, OpenMP-parallel version used by conv and
// linear (see gemm.cpp and docs/gemm.md). When called from inside an OpenMP
// parallel region it runs on the calling thread only. gemm_reference() is
// the obvious triple loop: the specification gemm() is tested against.
#pragma once
#include <cstdint>

namespace engine::cpu {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace engine::cpu
