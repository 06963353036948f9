// gelu: the exact (erf) GELU, elementwise. Math: kernels/common/gelu_math.h.
#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/cpu/activation.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/activation.h"
#endif

namespace engine {

Tensor gelu(const Tensor& x) {
  check_float32("gelu", "x", x);
  Tensor y = Tensor::empty_like(x);
  if (x.device().is_cpu()) {
    cpu::gelu_forward(x.data<float>(), y.data<float>(), x.numel());
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::gelu_forward(x.data<float>(), y.data<float>(), x.numel());
#else
    cuda_not_implemented("gelu");
#endif
  }

  if (autograd::needs_grad({&x})) {
    // dL/dx = dL/dy * gelu'(x): the backward needs x itself.
    Tensor saved_x = x.detach();
    autograd::record("gelu", y, {x}, [saved_x](const Tensor& grad_y) {
      Tensor grad_x = Tensor::empty_like(saved_x);  // the kernels write every element
      if (grad_y.device().is_cpu()) {
        cpu::gelu_backward(saved_x.data<float>(), grad_y.data<float>(), grad_x.data<float>(), saved_x.numel());
      } else {
#ifdef ENGINE_WITH_CUDA
        cuda::gelu_backward(saved_x.data<float>(), grad_y.data<float>(), grad_x.data<float>(), saved_x.numel());
#else
        cuda_not_implemented("gelu");
#endif
      }
      return std::vector<Tensor>{grad_x};
    });
  }
  return y;
}

}  // namespace engine
