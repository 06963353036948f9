// y = x W^T + b and its gradients on the GPU: see linear.h.
#include "kernels/cuda/linear.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cublas.h"
#include "kernels/cuda/engine_select.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream.h"

namespace engine::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, int64_t{1} << 20));
}

// y[n, o] = bias[o], or 0 without a bias: the starting value the GEMM adds onto.
__global__ void broadcast_rows_kernel(int64_t batch, int64_t features, const float* __restrict__ bias,
                                      float* __restrict__ y) {
  const int64_t total = batch * features;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x)
    y[i] = bias != nullptr ? bias[i % features] : 0.0f;
}

// grad_bias[o] += sum_n grad_y[n, o]. Thread o walks its column top to
// bottom (n = 0, 1, ...), in double; neighbouring threads read neighbouring
// columns of a row, so each row is read coalesced. Fixed order: same bits on
// every run.
__global__ void column_sum_kernel(int64_t batch, int64_t features, const float* __restrict__ grad_y,
                                  float* __restrict__ grad_bias) {
  for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < features;
       o += int64_t{gridDim.x} * blockDim.x) {
    double sum = 0.0;
    for (int64_t n = 0; n < batch; ++n) sum += grad_y[n * features + o];
    grad_bias[o] += static_cast<float>(sum);
  }
}

}  // namespace

void engine_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (gemm_engine() == GemmEngine::cublas)
    cublas_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t batch,
                    int64_t in_features, int64_t out_features) {
  if (batch == 0 || out_features == 0) return;
  broadcast_rows_kernel<<<blocks_for(batch * out_features), kThreads, 0, current_stream()>>>(batch, out_features,
                                                                                              bias, y);
  CUDA_CHECK_LAUNCH();
  // y [batch, out] += x [batch, in] * (weight [out, in])^T
  engine_gemm(false, true, batch, out_features, in_features, 1.0f, x, in_features, weight, in_features, 1.0f, y,
              out_features);
}

void linear_backward(const float* x, const float* weight, const float* grad_y, float* grad_x, float* grad_weight,
                     float* grad_bias, int64_t batch, int64_t in_features, int64_t out_features) {
  if (grad_x != nullptr) {
    // grad_x [batch, in] += grad_y [batch, out] * weight [out, in]
    engine_gemm(false, false, batch, in_features, out_features, 1.0f, grad_y, out_features, weight, in_features, 1.0f,
                grad_x, in_features);
  }
  if (grad_weight != nullptr) {
    // grad_weight [out, in] += (grad_y [batch, out])^T * x [batch, in]
    engine_gemm(true, false, out_features, in_features, batch, 1.0f, grad_y, out_features, x, in_features, 1.0f,
                grad_weight, in_features);
  }
  if (grad_bias != nullptr && out_features > 0 && batch > 0) {
    column_sum_kernel<<<blocks_for(out_features), kThreads, 0, current_stream()>>>(batch, out_features, grad_y,
                                                                                   grad_bias);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace engine::cuda
