// Our tiled GEMM: the plainest problem for the tile engine of gemm_tile.cuh,
// where A, B and C are ordinary row-major matrices. Read gemm_tile.cuh for
// the tiling (64 x 128 tiles of C per block, slices of 16 along K through
// shared memory, 4 x 8 outputs per thread in registers).
#include "kernels/cuda/gemm.h"

#include <cuda_runtime.h>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm_tile.cuh"
#include "kernels/cuda/stream.h"

namespace engine::cuda {
namespace {

// One GEMM. The transposes are template parameters, so each of the four
// variants is compiled with its own address arithmetic and no branch.
template <bool kTransA, bool kTransB>
struct GemmProblem {
  int M, N, k_begin, k_end;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
  float alpha, beta;

  // Load each operand along its contiguous index: A [M, K] along k, A^T
  // (stored [K, M]) along m; B [K, N] along n, B^T (stored [N, K]) along k.
  static constexpr bool kALoadAlongM = kTransA;
  static constexpr bool kBLoadAlongK = kTransB;

  __device__ GemmProblem slice(int) const { return *this; }

  using Column = int;  // nothing to precompute about a column of B: its index
  __device__ Column column(int n) const { return n; }
  // op(A)[m][k]: A[m][k] (A is [M, K]) or A[k][m] (A is [K, M]).
  __device__ float load_a(int m, int k) const { return kTransA ? A[k * lda + m] : A[m * lda + k]; }
  // op(B)[k][n]: B[k][n] (B is [K, N]) or B[n][k] (B is [N, K]).
  __device__ float load_b(int k, Column n) const { return kTransB ? B[n * ldb + k] : B[k * ldb + n]; }
  __device__ void store(int m, int n, float value) const {
    float* c = C + m * ldc + n;
    *c = beta == 0.0f ? alpha * value : alpha * value + beta * *c;  // beta == 0: never read C
  }
};

template <bool kTransA, bool kTransB>
void launch(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
            float beta, float* C, int64_t ldc) {
  GemmProblem<kTransA, kTransB> problem;
  problem.M = static_cast<int>(M);
  problem.N = static_cast<int>(N);
  problem.k_begin = 0;
  problem.k_end = static_cast<int>(K);
  problem.A = A;
  problem.lda = lda;
  problem.B = B;
  problem.ldb = ldb;
  problem.C = C;
  problem.ldc = ldc;
  problem.alpha = alpha;
  problem.beta = beta;
  tile::launch_tiled_gemm(problem, problem.M, problem.N, 1, current_stream());
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int64_t kIntMax = (int64_t{1} << 31) - 1;
  ENGINE_CHECK(M >= 0 && N >= 0 && K >= 0, "cuda::gemm: expected M, N, K >= 0, got ", M, ", ", N, ", ", K);
  ENGINE_CHECK(M <= kIntMax && N <= kIntMax && K <= kIntMax, "cuda::gemm: M, N, K must be below 2^31, got ", M, ", ",
               N, ", ", K);
  ENGINE_CHECK(M <= int64_t{65535} * tile::kTileM, "cuda::gemm: M = ", M, " exceeds the grid limit of ",
               int64_t{65535} * tile::kTileM, " rows");
  ENGINE_CHECK(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N) && ldc >= N, "cuda::gemm: leading dimensions ",
               "too small: lda ", lda, ", ldb ", ldb, ", ldc ", ldc, " for M ", M, ", N ", N, ", K ", K);
  if (M == 0 || N == 0) return;
  if (trans_a) {
    if (trans_b)
      launch<true, true>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
      launch<true, false>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    if (trans_b)
      launch<false, true>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
      launch<false, false>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

}  // namespace engine::cuda
