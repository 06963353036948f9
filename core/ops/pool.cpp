// avg_pool2d: average pooling over k x k windows with stride s, no padding
// (F.avg_pool2d(x, k, s) with padding 0, ceil_mode False). Kernels: kernels/cpu/pool.h.
#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/cpu/pool.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/pool.h"
#endif

namespace engine {

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride) {
  check_float32("avg_pool2d", "x", x);
  check_dim("avg_pool2d", "x", x, 4, "[N, C, H, W]");
  ENGINE_CHECK(kernel > 0, "avg_pool2d: argument 'kernel': expected a positive window size, got ", kernel);
  ENGINE_CHECK(stride >= 0, "avg_pool2d: argument 'stride': expected a positive stride (or 0, meaning kernel), got ",
               stride);
  if (stride == 0) stride = kernel;  // nn.AvgPool2d(k): stride defaults to the kernel size
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  ENGINE_CHECK(kernel <= height && kernel <= width, "avg_pool2d: argument 'kernel': window ", kernel, "x", kernel,
               " is larger than the input plane ", height, "x", width, " (x has shape ", shape_str(x.shape()), ")");
  // Floor: the last window must fit; the rest of the plane is not read.
  const int64_t out_height = (height - kernel) / stride + 1;
  const int64_t out_width = (width - kernel) / stride + 1;

  Tensor y = Tensor::empty({batch, channels, out_height, out_width}, DType::F32, x.device());
  if (x.device().is_cpu()) {
    cpu::avg_pool2d_forward(x.data<float>(), y.data<float>(), batch * channels, height, width, kernel, stride,
                            out_height, out_width);
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::avg_pool2d_forward(x.data<float>(), y.data<float>(), batch * channels, height, width, kernel, stride,
                             out_height, out_width);
#else
    cuda_not_implemented("avg_pool2d");
#endif
  }

  if (autograd::needs_grad({&x})) {
    // Linear in x: the backward needs only the geometry.
    const Shape x_shape = x.shape();
    autograd::record("avg_pool2d", y, {x}, [=](const Tensor& grad_y) {
      Tensor grad_x = Tensor::zeros(x_shape, DType::F32, grad_y.device());
      if (grad_y.device().is_cpu()) {
        cpu::avg_pool2d_backward(grad_y.data<float>(), grad_x.data<float>(), batch * channels, height, width, kernel,
                                 stride, out_height, out_width);
      } else {
#ifdef ENGINE_WITH_CUDA
        cuda::avg_pool2d_backward(grad_y.data<float>(), grad_x.data<float>(), batch * channels, height, width,
                                  kernel, stride, out_height, out_width);
#else
        cuda_not_implemented("avg_pool2d");
#endif
      }
      return std::vector<Tensor>{grad_x};
    });
  }
  return y;
}

}  // namespace engine
