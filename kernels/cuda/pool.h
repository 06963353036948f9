// CUDA twins of kernels/cpu/pool.h: 2-d average pooling over square windows,
// no padding. Same functions and arguments, device pointers, current stream.
//   y[p, oh, ow] = (1 / k^2) sum_{i, j < k} x[p, oh*s + i, ow*s + j]
#pragma once
#include <cstdint>

namespace engine::cuda {

// x [planes, height, width] -> y [planes, out_height, out_width]; one thread per output.
void avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t height, int64_t width, int64_t kernel,
                        int64_t stride, int64_t out_height, int64_t out_width);

// grad_x [planes, height, width] += the share of every window that covers it;
// one thread per INPUT element, which gathers from the windows covering it
// (no two threads write the same element: no atomics, and the sum runs in
// the CPU's order, so the bits match the CPU's).
void avg_pool2d_backward(const float* grad_y, float* grad_x, int64_t planes, int64_t height, int64_t width,
                         int64_t kernel, int64_t stride, int64_t out_height, int64_t out_width);

}  // namespace engine::cuda
