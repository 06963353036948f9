#include "kernels/cpu/pool.h"

namespace engine::cpu {

// Both directions are parallel over planes: each plane belongs to one thread
// and is visited in index order, so overlapping windows accumulate in a
// fixed order (same bits whatever the thread count). Window sums are in
// float: at most k^2 terms (49 for the 7x7 pool).

void avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t height, int64_t width, int64_t kernel,
                        int64_t stride, int64_t out_height, int64_t out_width) {
  const float area = static_cast<float>(kernel * kernel);
#pragma omp parallel for schedule(static) if (planes * height * width > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x + p * height * width;
    float* y_plane = y + p * out_height * out_width;
    for (int64_t oh = 0; oh < out_height; ++oh)
      for (int64_t ow = 0; ow < out_width; ++ow) {
        const float* window = x_plane + oh * stride * width + ow * stride;
        float s = 0.0f;
        for (int64_t i = 0; i < kernel; ++i)
          for (int64_t j = 0; j < kernel; ++j) s += window[i * width + j];
        y_plane[oh * out_width + ow] = s / area;
      }
  }
}

void avg_pool2d_backward(const float* grad_y, float* grad_x, int64_t planes, int64_t height, int64_t width,
                         int64_t kernel, int64_t stride, int64_t out_height, int64_t out_width) {
  const float area = static_cast<float>(kernel * kernel);
#pragma omp parallel for schedule(static) if (planes * height * width > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const float* gy_plane = grad_y + p * out_height * out_width;
    float* gx_plane = grad_x + p * height * width;
    for (int64_t oh = 0; oh < out_height; ++oh)
      for (int64_t ow = 0; ow < out_width; ++ow) {
        const float share = gy_plane[oh * out_width + ow] / area;
        float* window = gx_plane + oh * stride * width + ow * stride;
        for (int64_t i = 0; i < kernel; ++i)
          for (int64_t j = 0; j < kernel; ++j) window[i * width + j] += share;
      }
  }
}

}  // namespace engine::cpu
