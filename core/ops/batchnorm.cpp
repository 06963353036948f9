// batch_norm2d: BatchNorm over the channels of x [N, C, H, W] (F.batch_norm).
//
//   training: mean and biased variance of each channel over its N*H*W values
//             normalise x; running_mean / running_var move towards the batch
//             mean and UNBIASED variance with the given momentum (in place,
//             not recorded by autograd).
//   eval:     running_mean / running_var normalise x; nothing is updated.
//   y = (x - mean) / sqrt(var + eps) * weight + bias
// Kernels: kernels/cpu/batchnorm.h; per-element math: kernels/common/batchnorm_math.h.
#include <cmath>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/cpu/batchnorm.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/batchnorm.h"
#endif

namespace engine {
namespace {

constexpr const char* kOp = "batch_norm2d";

// A per-channel argument: F32, shape [C], on x's device.
void check_channel_vector(const char* arg, const Tensor& t, const Tensor& x) {
  check_float32(kOp, arg, t);
  check_shape(kOp, arg, t, {x.size(1)});
  check_same_device(kOp, "x", x, arg, t);
}

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                    Tensor& running_var, bool training, double momentum, double eps) {
  check_float32(kOp, "x", x);
  check_dim(kOp, "x", x, 4, "[N, C, H, W]");
  check_channel_vector("weight", weight, x);
  check_channel_vector("bias", bias, x);
  check_channel_vector("running_mean", running_mean, x);
  check_channel_vector("running_var", running_var, x);
  ENGINE_CHECK(std::isfinite(momentum) && momentum >= 0.0 && momentum <= 1.0, kOp,
               ": argument 'momentum': expected a value in [0, 1], got ", momentum);
  ENGINE_CHECK(std::isfinite(eps) && eps >= 0.0, kOp, ": argument 'eps': expected a value >= 0, got ", eps);

  const int64_t batch = x.size(0), channels = x.size(1), spatial = x.size(2) * x.size(3);
  // The unbiased variance divides by m - 1, and a variance of one value is
  // meaningless: PyTorch refuses it, and so do we.
  ENGINE_CHECK(!training || batch * spatial > 1, kOp,
               ": Expected more than 1 value per channel when training, got input size ", shape_str(x.shape()));

  // The statistics that normalise x: batch statistics (training) or the
  // running ones (eval). Saved for the backward either way: in eval mode a
  // copy, so that a later in-place update of the running statistics cannot
  // change the gradient of this call.
  Tensor mean = Tensor::empty({channels}, DType::F32, x.device());
  Tensor inv_std = Tensor::empty({channels}, DType::F32, x.device());
  Tensor y = Tensor::empty_like(x);
  if (x.device().is_cpu()) {
    if (training)
      cpu::batchnorm_batch_stats(x.data<float>(), batch, channels, spatial, momentum, eps, mean.data<float>(),
                                 inv_std.data<float>(), running_mean.data<float>(), running_var.data<float>());
    else
      cpu::batchnorm_running_stats(running_mean.data<float>(), running_var.data<float>(), channels, eps,
                                   mean.data<float>(), inv_std.data<float>());
    cpu::batchnorm_apply(x.data<float>(), mean.data<float>(), inv_std.data<float>(), weight.data<float>(),
                         bias.data<float>(), y.data<float>(), batch, channels, spatial);
  } else {
#ifdef ENGINE_WITH_CUDA
    if (training)
      cuda::batchnorm_batch_stats(x.data<float>(), batch, channels, spatial, momentum, eps, mean.data<float>(),
                                  inv_std.data<float>(), running_mean.data<float>(), running_var.data<float>());
    else
      cuda::batchnorm_running_stats(running_mean.data<float>(), running_var.data<float>(), channels, eps,
                                    mean.data<float>(), inv_std.data<float>());
    cuda::batchnorm_apply(x.data<float>(), mean.data<float>(), inv_std.data<float>(), weight.data<float>(),
                          bias.data<float>(), y.data<float>(), batch, channels, spatial);
#else
    cuda_not_implemented(kOp);
#endif
  }

  if (autograd::needs_grad({&x, &weight, &bias})) {
    Tensor saved_x = x.detach(), saved_weight = weight.detach();
    const bool grad_x = x.requires_grad(), grad_weight = weight.requires_grad(), grad_bias = bias.requires_grad();
    autograd::record(kOp, y, {x, weight, bias}, [=](const Tensor& grad_y) {
      std::vector<Tensor> grads(3);
      if (grad_x) grads[0] = Tensor::zeros_like(saved_x);
      if (grad_weight) grads[1] = Tensor::zeros_like(saved_weight);
      if (grad_bias) grads[2] = Tensor::zeros_like(saved_weight);
      float* grad_x_data = grad_x ? grads[0].data<float>() : nullptr;
      float* grad_weight_data = grad_weight ? grads[1].data<float>() : nullptr;
      float* grad_bias_data = grad_bias ? grads[2].data<float>() : nullptr;
      if (grad_y.device().is_cpu()) {
        cpu::batchnorm_backward(saved_x.data<float>(), grad_y.data<float>(), mean.data<float>(),
                                inv_std.data<float>(), saved_weight.data<float>(), training, grad_x_data,
                                grad_weight_data, grad_bias_data, batch, channels, spatial);
      } else {
#ifdef ENGINE_WITH_CUDA
        cuda::batchnorm_backward(saved_x.data<float>(), grad_y.data<float>(), mean.data<float>(),
                                 inv_std.data<float>(), saved_weight.data<float>(), training, grad_x_data,
                                 grad_weight_data, grad_bias_data, batch, channels, spatial);
#else
        cuda_not_implemented(kOp);
#endif
      }
      return grads;
    });
  }
  return y;
}

}  // namespace engine
