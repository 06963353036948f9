// cuBLAS behind the engine's GEMM contract: see cublas.h.
#include "kernels/cuda/cublas.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/engine_select.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace engine::cuda {
namespace {

// cuBLAS's recommended workspace on Hopper is 32 MiB (4 MiB before it).
constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;

struct DeviceHandle {
  cublasHandle_t handle = nullptr;
  void* workspace = nullptr;
};

std::mutex g_mutex;
std::vector<DeviceHandle> g_handles;  // by device; kept until the process exits

// The current device's handle, created on first use, bound to the current
// stream with the current math mode.
cublasHandle_t handle_for_current_stream() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  cublasHandle_t handle = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (static_cast<int>(g_handles.size()) <= device) g_handles.resize(static_cast<std::size_t>(device) + 1);
    DeviceHandle& entry = g_handles[static_cast<std::size_t>(device)];
    if (entry.handle == nullptr) {
      cublasHandle_t created = nullptr;
      const cublasStatus_t status = cublasCreate(&created);
      ENGINE_CHECK(status == CUBLAS_STATUS_SUCCESS, "cuBLAS: cublasCreate failed on cuda:", device, ": ",
                   cublasGetStatusName(status), " (", cublasGetStatusString(status),
                   "); is libcublas installed and does it match the driver? Use ENGINE_GEMM_ENGINE=own to run",
                   " without cuBLAS");
      entry.workspace = raw_malloc(kCublasWorkspaceBytes, device);
      entry.handle = created;
    }
    handle = entry.handle;
  }
  CUBLAS_CHECK(cublasSetStream(handle, current_stream()));
  // The workspace is re-attached after every cublasSetStream (which resets it
  // to cuBLAS's internal pool).
  CUBLAS_CHECK(cublasSetWorkspace(handle, g_handles[static_cast<std::size_t>(device)].workspace,
                                  kCublasWorkspaceBytes));
  CUBLAS_CHECK(cublasSetMathMode(handle, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return handle;
}

}  // namespace

void cublas_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int64_t kIntMax = (int64_t{1} << 31) - 1;
  ENGINE_CHECK(M >= 0 && N >= 0 && K >= 0, "cublas_gemm: expected M, N, K >= 0, got ", M, ", ", N, ", ", K);
  ENGINE_CHECK(M <= kIntMax && N <= kIntMax && K <= kIntMax && lda <= kIntMax && ldb <= kIntMax && ldc <= kIntMax,
               "cublas_gemm: sizes and leading dimensions must be below 2^31 (cuBLAS's int API), got M ", M, ", N ",
               N, ", K ", K, ", lda ", lda, ", ldb ", ldb, ", ldc ", ldc);
  ENGINE_CHECK(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N) && ldc >= N, "cublas_gemm: leading dimensions ",
               "too small: lda ", lda, ", ldb ", ldb, ", ldc ", ldc, " for M ", M, ", N ", N, ", K ", K);
  if (M == 0 || N == 0) return;
  // K == 0: C = beta C. cuBLAS would reject the leading dimensions (which may
  // be 0 then); our own kernel handles it (its K loop is empty).
  if (K == 0) {
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  cublasHandle_t handle = handle_for_current_stream();
  // Column-major view: C^T [N, M] = op(B)^T [N, K] * op(A)^T [K, M].
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasSgemm(handle, op_b, op_a, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha,
                           B, static_cast<int>(ldb), A, static_cast<int>(lda), &beta, C, static_cast<int>(ldc)));
}

}  // namespace engine::cuda
