// Average pooling on the GPU.
//
// Forward: thread i owns output element i = (p, oh, ow) and sums its k x k
// window in float in row-major order, as the CPU does (same bits).
//
// Backward by gathering. The CPU loops over outputs and scatters each share
// grad_y / k^2 into its window; on the GPU two threads scattering into
// overlapping windows (stride < k) would race, and atomics would make the
// order of additions, hence the bits, vary. Instead thread i owns INPUT
// element (p, h, w) and visits the outputs whose windows contain it:
//     oh*s <= h < oh*s + k   <=>   ceil((h - k + 1) / s) <= oh <= floor(h / s)
// (clipped to [0, OH)), likewise for ow. It adds their shares in increasing
// (oh, ow) order, starting from the current grad_x value: exactly the
// sequence of additions the CPU makes for that element.
#include "kernels/cuda/pool.h"

#include "kernels/cuda/launch.cuh"

namespace engine::cuda {
namespace {

__global__ void avg_pool2d_forward_kernel(const float* x, float* y, int64_t n, int64_t height, int64_t width,
                                          int64_t kernel, int64_t stride, int64_t out_height, int64_t out_width) {
  const float area = static_cast<float>(kernel * kernel);
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) {
    const int64_t ow = i % out_width;
    const int64_t oh = (i / out_width) % out_height;
    const int64_t p = i / (out_width * out_height);
    const float* window = x + (p * height + oh * stride) * width + ow * stride;
    float s = 0.0f;
    for (int64_t r = 0; r < kernel; ++r)
      for (int64_t c = 0; c < kernel; ++c) s += window[r * width + c];
    y[i] = s / area;
  }
}

// The first output index whose window [o*s, o*s + k) reaches position `pos`:
// the smallest o >= 0 with o*s + k > pos, i.e. ceil((pos - k + 1) / s).
__device__ int64_t first_window(int64_t pos, int64_t kernel, int64_t stride) {
  const int64_t reach = pos - kernel + 1;
  return reach <= 0 ? 0 : (reach + stride - 1) / stride;
}

__global__ void avg_pool2d_backward_kernel(const float* grad_y, float* grad_x, int64_t n, int64_t height,
                                           int64_t width, int64_t kernel, int64_t stride, int64_t out_height,
                                           int64_t out_width) {
  const float area = static_cast<float>(kernel * kernel);
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) {
    const int64_t w = i % width;
    const int64_t h = (i / width) % height;
    const int64_t p = i / (width * height);
    const int64_t oh_begin = first_window(h, kernel, stride);
    const int64_t oh_end = min(h / stride + 1, out_height);  // windows starting at or before h
    const int64_t ow_begin = first_window(w, kernel, stride);
    const int64_t ow_end = min(w / stride + 1, out_width);
    const float* gy_plane = grad_y + p * out_height * out_width;
    float acc = grad_x[i];
    for (int64_t oh = oh_begin; oh < oh_end; ++oh)
      for (int64_t ow = ow_begin; ow < ow_end; ++ow) acc += gy_plane[oh * out_width + ow] / area;
    grad_x[i] = acc;
  }
}

}  // namespace

void avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t height, int64_t width, int64_t kernel,
                        int64_t stride, int64_t out_height, int64_t out_width) {
  const int64_t n = planes * out_height * out_width;
  if (n == 0) return;
  avg_pool2d_forward_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(x, y, n, height, width, kernel, stride,
                                                                            out_height, out_width);
  CUDA_CHECK_LAUNCH();
}

void avg_pool2d_backward(const float* grad_y, float* grad_x, int64_t planes, int64_t height, int64_t width,
                         int64_t kernel, int64_t stride, int64_t out_height, int64_t out_width) {
  const int64_t n = planes * height * width;
  if (n == 0) return;
  avg_pool2d_backward_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(grad_y, grad_x, n, height, width, kernel,
                                                                             stride, out_height, out_width);
  CUDA_CHECK_LAUNCH();
}

}  // namespace engine::cuda
