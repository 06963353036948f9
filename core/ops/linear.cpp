// linear: y = x W^T + b (F.linear). Argument checks, kernel dispatch,
// autograd. The kernels are in kernels/cpu/linear.{h,cpp} and
// kernels/cuda/linear.{h,cu} (cuBLAS or our tiled GEMM, chosen at run time).
#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/cpu/linear.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/linear.h"
#include "kernels/cuda/runtime.h"
#endif

namespace engine {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  constexpr const char* op = "linear";
  check_float32(op, "x", x);
  check_dim(op, "x", x, 2, "[N, in_features]");
  check_float32(op, "weight", weight);
  check_dim(op, "weight", weight, 2, "[out_features, in_features]");
  check_same_device(op, "x", x, "weight", weight);
  const int64_t batch = x.size(0), in_features = x.size(1), out_features = weight.size(0);
  ENGINE_CHECK(weight.size(1) == in_features, op, ": argument 'weight': expected [out_features, in_features] with ",
               "in_features = ", in_features, " (the features of x ", shape_str(x.shape()), "), got shape ",
               shape_str(weight.shape()));
  if (bias.defined()) {
    check_float32(op, "bias", bias);
    check_same_device(op, "x", x, "bias", bias);
    ENGINE_CHECK(bias.shape() == Shape{out_features}, op, ": argument 'bias': expected shape [out_features] = [",
                 out_features, "] (out_features from weight ", shape_str(weight.shape()), "), got ",
                 shape_str(bias.shape()));
  }

  Tensor y = Tensor::empty({batch, out_features}, DType::F32, x.device());
  if (x.device().is_cpu()) {
    cpu::linear_forward(x.data<float>(), weight.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                        y.data<float>(), batch, in_features, out_features);
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::DeviceGuard device_guard(x.device().index);
    cuda::linear_forward(x.data<float>(), weight.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                         y.data<float>(), batch, in_features, out_features);
#else
    cuda_not_implemented(op);
#endif
  }

  if (autograd::needs_grad({&x, &weight, &bias})) {
    const bool grad_x = x.requires_grad(), grad_weight = weight.requires_grad();
    const bool grad_bias = bias.defined() && bias.requires_grad();
    // grad_x needs only the weight, grad_weight only x, grad_bias neither.
    Tensor saved_x = grad_weight ? x.detach() : Tensor();
    Tensor saved_weight = grad_x ? weight.detach() : Tensor();
    autograd::record(op, y, {x, weight, bias}, [=](const Tensor& grad_y) {
      std::vector<Tensor> grads(3);
      if (grad_x) grads[0] = Tensor::zeros({batch, in_features}, DType::F32, grad_y.device());
      if (grad_weight) grads[1] = Tensor::zeros({out_features, in_features}, DType::F32, grad_y.device());
      if (grad_bias) grads[2] = Tensor::zeros({out_features}, DType::F32, grad_y.device());
      const float* xd = grad_weight ? saved_x.data<float>() : nullptr;
      const float* wd = grad_x ? saved_weight.data<float>() : nullptr;
      float* gx = grad_x ? grads[0].data<float>() : nullptr;
      float* gw = grad_weight ? grads[1].data<float>() : nullptr;
      float* gb = grad_bias ? grads[2].data<float>() : nullptr;
      if (grad_y.device().is_cpu()) {
        cpu::linear_backward(xd, wd, grad_y.data<float>(), gx, gw, gb, batch, in_features, out_features);
      } else {
#ifdef ENGINE_WITH_CUDA
        cuda::DeviceGuard device_guard(grad_y.device().index);
        cuda::linear_backward(xd, wd, grad_y.data<float>(), gx, gw, gb, batch, in_features, out_features);
#else
        cuda_not_implemented(op);
#endif
      }
      return grads;
    });
  }
  return y;
}

}  // namespace engine
