// sum, mean, mse_loss: full reductions to a shape-[] tensor.
#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/cpu/reduce.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/reduce.h"
#endif

namespace engine {
namespace {

// sum (factor 1) or mean (factor 1/n).
Tensor reduce_all(const char* op, const Tensor& a, bool average) {
  check_float32(op, "a", a);
  const int64_t n = a.numel();
  ENGINE_CHECK(n > 0 || !average, op, ": argument 'a': mean of an empty tensor (shape ", shape_str(a.shape()), ")");
  Tensor out = Tensor::empty({}, DType::F32, a.device());
  const float factor = average ? 1.0f / static_cast<float>(n) : 1.0f;
  if (a.device().is_cpu()) {
    cpu::sum_forward(a.data<float>(), out.data<float>(), n);
    out.data<float>()[0] *= factor;
  } else {
#ifdef ENGINE_WITH_CUDA
    // The sum stays on the device; the mean's scaling is a one-element
    // affine kernel (out * factor + 0: the same float product as the CPU's).
    cuda::sum_forward(a.data<float>(), out.data<float>(), n);
    if (average) cuda::affine_forward(out.data<float>(), factor, 0.0f, out.data<float>(), 1);
#else
    cuda_not_implemented(op);
#endif
  }
  if (autograd::needs_grad({&a})) {
    const Shape shape = a.shape();
    autograd::record(op, out, {a}, [op, shape, factor](const Tensor& grad_out) {
      Tensor grad = Tensor::zeros(shape, DType::F32, grad_out.device());
      if (grad_out.device().is_cpu()) {
        cpu::sum_backward(grad_out.data<float>(), factor, grad.data<float>(), grad.numel());
      } else {
#ifdef ENGINE_WITH_CUDA
        cuda::sum_backward(grad_out.data<float>(), factor, grad.data<float>(), grad.numel());
#else
        cuda_not_implemented(op);
#endif
      }
      return std::vector<Tensor>{grad};
    });
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& a) { return reduce_all("sum", a, false); }
Tensor mean(const Tensor& a) { return reduce_all("mean", a, true); }

Tensor mse_loss(const Tensor& pred, const Tensor& target) {
  check_float32("mse_loss", "pred", pred);
  check_float32("mse_loss", "target", target);
  check_same_device("mse_loss", "pred", pred, "target", target);
  check_shape("mse_loss", "target", target, pred.shape());
  ENGINE_CHECK(pred.numel() > 0, "mse_loss: argument 'pred': empty tensor");
  Tensor out = Tensor::empty({}, DType::F32, pred.device());
  if (pred.device().is_cpu()) {
    cpu::mse_forward(pred.data<float>(), target.data<float>(), out.data<float>(), pred.numel());
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::mse_forward(pred.data<float>(), target.data<float>(), out.data<float>(), pred.numel());
#else
    cuda_not_implemented("mse_loss");
#endif
  }
  if (autograd::needs_grad({&pred, &target})) {
    Tensor p = pred.detach(), t = target.detach();
    const bool grad_pred = pred.requires_grad(), grad_target = target.requires_grad();
    autograd::record("mse_loss", out, {pred, target}, [=](const Tensor& grad_out) {
      std::vector<Tensor> grads(2);
      if (grad_pred) grads[0] = Tensor::zeros_like(p);
      if (grad_target) grads[1] = Tensor::zeros_like(t);
      float* grad_pred_data = grad_pred ? grads[0].data<float>() : nullptr;
      float* grad_target_data = grad_target ? grads[1].data<float>() : nullptr;
      if (grad_out.device().is_cpu()) {
        cpu::mse_backward(p.data<float>(), t.data<float>(), grad_out.data<float>(), grad_pred_data, grad_target_data,
                          p.numel());
      } else {
#ifdef ENGINE_WITH_CUDA
        cuda::mse_backward(p.data<float>(), t.data<float>(), grad_out.data<float>(), grad_pred_data,
                           grad_target_data, p.numel());
#else
        cuda_not_implemented("mse_loss");
#endif
      }
      return grads;
    });
  }
  return out;
}

}  // namespace engine
