// 2-d average pooling over square windows, no padding (nn.AvgPool2d(k, s)).
//
// x [N, C, H, W] is treated as planes = N * C independent H x W images.
// Output extents (floor: a window that would run past the edge is dropped):
//     OH = (H - k) / s + 1,   OW = (W - k) / s + 1
// and each output is the mean of its k x k window:
//     y[p, oh, ow] = (1 / k^2) sum_{i, j < k} x[p, oh*s + i, ow*s + j]
// Backward spreads each output gradient evenly over its window:
//     grad_x[p, oh*s + i, ow*s + j] += grad_y[p, oh, ow] / k^2
// (windows overlap when s < k: the contributions add up).
#pragma once
#include <cstdint>

namespace engine::cpu {

// x [planes, height, width] -> y [planes, out_height, out_width].
void avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t height, int64_t width, int64_t kernel,
                        int64_t stride, int64_t out_height, int64_t out_width);

// grad_y [planes, out_height, out_width]; grad_x [planes, height, width] (+=).
void avg_pool2d_backward(const float* grad_y, float* grad_x, int64_t planes, int64_t height, int64_t width,
                         int64_t kernel, int64_t stride, int64_t out_height, int64_t out_width);

}  // namespace engine::cpu
