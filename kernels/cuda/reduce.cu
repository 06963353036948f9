// sum and mse_loss on the GPU: the two-level deterministic reduction of
// full_reduce.cuh, and elementwise backward kernels.
#include "kernels/cuda/reduce.h"

#include "kernels/cuda/full_reduce.cuh"

namespace engine::cuda {
namespace {

struct ValueTerm {  // x[i]
  const float* x;
  __device__ double operator()(int64_t i) const { return x[i]; }
};

struct SquaredErrorTerm {  // (pred[i] - target[i])^2, the difference taken in double as on the CPU
  const float* pred;
  const float* target;
  __device__ double operator()(int64_t i) const {
    const double d = static_cast<double>(pred[i]) - target[i];
    return d * d;
  }
};

// Every thread reads the one gradient value (a broadcast load, served from cache).
__global__ void sum_backward_kernel(const float* grad_out, float factor, float* grad_x, int64_t n) {
  const float g = grad_out[0] * factor;
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) grad_x[i] += g;
}

__global__ void mse_backward_kernel(const float* pred, const float* target, const float* grad_out, float* grad_pred,
                                    float* grad_target, int64_t n) {
  const float g = 2.0f * grad_out[0] / static_cast<float>(n);
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) {
    const float d = (pred[i] - target[i]) * g;
    if (grad_pred) grad_pred[i] += d;
    if (grad_target) grad_target[i] -= d;
  }
}

}  // namespace

void sum_forward(const float* x, float* out, int64_t n) {
  full_sum(ValueTerm{x}, n, out, /*divisor=*/1.0, 1.0f, /*accumulate=*/false);
}

void sum_backward(const float* grad_out, float factor, float* grad_x, int64_t n) {
  if (n == 0) return;
  sum_backward_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(grad_out, factor, grad_x, n);
  CUDA_CHECK_LAUNCH();
}

void mse_forward(const float* pred, const float* target, float* out, int64_t n) {
  full_sum(SquaredErrorTerm{pred, target}, n, out, /*divisor=*/static_cast<double>(n), 1.0f, /*accumulate=*/false);
}

void mse_backward(const float* pred, const float* target, const float* grad_out, float* grad_pred,
                  float* grad_target, int64_t n) {
  if (n == 0 || (!grad_pred && !grad_target)) return;
  mse_backward_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(pred, target, grad_out, grad_pred, grad_target,
                                                                      n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace engine::cuda
