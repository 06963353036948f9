// GELU on the GPU: one thread per element (grid-stride loop, launch.cuh),
// calling the shared per-element math of kernels/common/gelu_math.h.
#include "kernels/cuda/activation.h"

#include "kernels/common/gelu_math.h"
#include "kernels/cuda/launch.cuh"

namespace engine::cuda {
namespace {

__global__ void gelu_forward_kernel(const float* x, float* y, int64_t n) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) y[i] = math::gelu(x[i]);
}

__global__ void gelu_backward_kernel(const float* x, const float* grad_y, float* grad_x, int64_t n) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) grad_x[i] = grad_y[i] * math::gelu_derivative(x[i]);
}

}  // namespace

void gelu_forward(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  gelu_forward_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(x, y, n);
  CUDA_CHECK_LAUNCH();
}

void gelu_backward(const float* x, const float* grad_y, float* grad_x, int64_t n) {
  if (n == 0) return;
  gelu_backward_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(x, grad_y, grad_x, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace engine::cuda
