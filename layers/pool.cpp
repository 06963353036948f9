#include "core/ops.h"
#include "layers/layers.h"

namespace engine {

AvgPool2d::AvgPool2d(int64_t kernel_size_, int64_t stride_)
    : kernel_size(kernel_size_), stride(stride_ == 0 ? kernel_size_ : stride_) {
  ENGINE_CHECK(kernel_size > 0, "AvgPool2d: kernel_size must be positive, got ", kernel_size);
  ENGINE_CHECK(stride_ >= 0, "AvgPool2d: stride must be positive (or 0 for stride = kernel_size), got ", stride_);
}

Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, kernel_size, stride); }

}  // namespace engine
