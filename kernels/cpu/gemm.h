// Single-precision matrix multiply, row-major:
//   C[M, N] = alpha * op(A) op(B) + beta * C
// op(A) is [M, K]: A itself (lda >= K) or, with trans_a, the transpose of a
// stored [K, M] matrix (lda >= M). Likewise op(B) is [K, N]: B (ldb >= N) or
// the transpose of a stored [N, K] matrix (ldb >= K). ldc >= N.
// beta == 0 means C is write-only (its old contents, even NaN, are ignored).
// K == 0 gives C = beta * C. Only the M x N elements of C are written (the
// columns between N and ldc are left alone).
//
// gemm() is the fast, cache-blocked, OpenMP-parallel version used by conv and
// linear (see gemm.cpp and docs/gemm.md). When called from inside an OpenMP
// parallel region it runs on the calling thread only. It is deterministic:
// each element's sum over K runs in an order fixed by K alone, so results are
// bit-identical whatever the thread count (for the same build: AVX2 and
// -march=native builds block differently and may differ in the last bits).
// gemm_reference() is the obvious triple loop, summing in double: the
// specification gemm() is tested against.
#pragma once
#include <cstdint>

namespace engine::cpu {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace engine::cpu
