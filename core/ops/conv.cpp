// conv2d and conv_transpose2d: argument checks, kernel dispatch, autograd.
// The CPU kernels (im2col + GEMM) are in kernels/cpu/conv.{h,cpp}, the math
// in docs/conv.md; the CUDA kernels (cuDNN or our implicit GEMM, chosen at
// run time) in kernels/cuda/conv.{h,cu} and docs/cuda_conv.md.
#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/common/conv_params.h"
#include "kernels/cpu/conv.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/conv.h"
#include "kernels/cuda/runtime.h"
#endif

namespace engine {
namespace {

// Stride, padding and output_padding above this are surely mistakes, and
// rejecting them keeps every size computation far from int64 overflow.
constexpr int64_t kMaxConvHyperparameter = int64_t{1} << 30;

enum class ConvKind { Conv, Transposed };

// Checks every argument of conv2d / conv_transpose2d and returns the shapes.
ConvParams check_conv_arguments(const char* op, ConvKind kind, const Tensor& x, const Tensor& weight,
                                const Tensor& bias, int64_t stride, int64_t padding, int64_t output_padding) {
  const bool transposed = kind == ConvKind::Transposed;
  const char* weight_layout = transposed ? "[C_in, C_out, KH, KW]" : "[C_out, C_in, KH, KW]";
  check_float32(op, "x", x);
  check_dim(op, "x", x, 4, "[N, C_in, H, W]");
  check_float32(op, "weight", weight);
  check_dim(op, "weight", weight, 4, weight_layout);
  check_same_device(op, "x", x, "weight", weight);

  ENGINE_CHECK(stride >= 1 && stride <= kMaxConvHyperparameter, op, ": argument 'stride': expected a positive integer",
               " (at most 2^30), got ", stride);
  ENGINE_CHECK(padding >= 0 && padding <= kMaxConvHyperparameter, op,
               ": argument 'padding': expected an integer >= 0 (at most 2^30), got ", padding);
  ENGINE_CHECK(output_padding >= 0 && output_padding < stride, op,
               ": argument 'output_padding': expected an integer >= 0 and smaller than stride (", stride, "), got ",
               output_padding);

  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  ENGINE_CHECK(xs[1] >= 1 && xs[2] >= 1 && xs[3] >= 1, op, ": argument 'x': expected [N, C_in, H, W] with C_in, H, W",
               " >= 1, got shape ", shape_str(xs));
  ENGINE_CHECK(ws[0] >= 1 && ws[1] >= 1 && ws[2] >= 1 && ws[3] >= 1, op, ": argument 'weight': expected ",
               weight_layout, " with every extent >= 1, got shape ", shape_str(ws));
  // The weight's input-channel extent must match x: dimension 1 for conv2d,
  // dimension 0 for conv_transpose2d (PyTorch stores transposed-conv weights
  // [C_in, C_out, KH, KW]).
  const int64_t weight_in_channels = transposed ? ws[0] : ws[1];
  ENGINE_CHECK(weight_in_channels == xs[1], op, ": argument 'weight': expected ", weight_layout, " with C_in = ",
               xs[1], " (the channels of x ", shape_str(xs), ")", transposed ? " in dimension 0" : " in dimension 1",
               ", got shape ", shape_str(ws));
  const int64_t out_channels = transposed ? ws[1] : ws[0];

  if (bias.defined()) {
    check_float32(op, "bias", bias);
    check_same_device(op, "x", x, "bias", bias);
    ENGINE_CHECK(bias.shape() == Shape{out_channels}, op, ": argument 'bias': expected shape [C_out] = [",
                 out_channels, "] (C_out from weight ", shape_str(ws), "), got ", shape_str(bias.shape()));
  }

  const ConvParams p =
      transposed ? make_conv_transpose2d_params(xs[0], xs[1], xs[2], xs[3], out_channels, ws[2], ws[3], stride,
                                                padding, output_padding)
                 : make_conv2d_params(xs[0], xs[1], xs[2], xs[3], out_channels, ws[2], ws[3], stride, padding);
  ENGINE_CHECK(p.out_height >= 1 && p.out_width >= 1, op, ": computed output size ", p.out_height, "x", p.out_width,
               " is too small (expected at least 1x1) for x ", shape_str(xs), " with kernel ", ws[2], "x", ws[3],
               ", stride ", stride, ", padding ", padding, transposed ? ", output_padding " : "",
               transposed ? std::to_string(output_padding) : std::string());
  return p;
}

Tensor conv_op(const char* op, ConvKind kind, const Tensor& x, const Tensor& weight, const Tensor& bias,
               int64_t stride, int64_t padding, int64_t output_padding) {
  const ConvParams p = check_conv_arguments(op, kind, x, weight, bias, stride, padding, output_padding);
  const bool transposed = kind == ConvKind::Transposed;
  Tensor y = Tensor::empty({p.batch, p.out_channels, p.out_height, p.out_width}, DType::F32, x.device());
  if (x.device().is_cpu()) {
    const float* b = bias.defined() ? bias.data<float>() : nullptr;
    if (transposed)
      cpu::conv_transpose2d_forward(p, x.data<float>(), weight.data<float>(), b, y.data<float>());
    else
      cpu::conv2d_forward(p, x.data<float>(), weight.data<float>(), b, y.data<float>());
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::DeviceGuard device_guard(x.device().index);
    const float* b = bias.defined() ? bias.data<float>() : nullptr;
    if (transposed)
      cuda::conv_transpose2d_forward(p, x.data<float>(), weight.data<float>(), b, y.data<float>());
    else
      cuda::conv2d_forward(p, x.data<float>(), weight.data<float>(), b, y.data<float>());
#else
    cuda_not_implemented(op);
#endif
  }

  if (autograd::needs_grad({&x, &weight, &bias})) {
    const bool grad_x = x.requires_grad(), grad_weight = weight.requires_grad();
    const bool grad_bias = bias.defined() && bias.requires_grad();
    // grad_x needs only the weight, grad_weight only x; grad_bias neither.
    Tensor saved_x = grad_weight ? x.detach() : Tensor();
    Tensor saved_weight = grad_x ? weight.detach() : Tensor();
    const Shape x_shape = x.shape(), weight_shape = weight.shape();
    autograd::record(op, y, {x, weight, bias}, [=](const Tensor& grad_y) {
      std::vector<Tensor> grads(3);
      if (grad_x) grads[0] = Tensor::zeros(x_shape, DType::F32, grad_y.device());
      if (grad_weight) grads[1] = Tensor::zeros(weight_shape, DType::F32, grad_y.device());
      if (grad_bias) grads[2] = Tensor::zeros({p.out_channels}, DType::F32, grad_y.device());
      const float* xd = grad_weight ? saved_x.data<float>() : nullptr;
      const float* wd = grad_x ? saved_weight.data<float>() : nullptr;
      float* gx = grad_x ? grads[0].data<float>() : nullptr;
      float* gw = grad_weight ? grads[1].data<float>() : nullptr;
      float* gb = grad_bias ? grads[2].data<float>() : nullptr;
      if (grad_y.device().is_cpu()) {
        if (transposed)
          cpu::conv_transpose2d_backward(p, xd, wd, grad_y.data<float>(), gx, gw, gb);
        else
          cpu::conv2d_backward(p, xd, wd, grad_y.data<float>(), gx, gw, gb);
      } else {
#ifdef ENGINE_WITH_CUDA
        cuda::DeviceGuard device_guard(grad_y.device().index);
        if (transposed)
          cuda::conv_transpose2d_backward(p, xd, wd, grad_y.data<float>(), gx, gw, gb);
        else
          cuda::conv2d_backward(p, xd, wd, grad_y.data<float>(), gx, gw, gb);
#else
        cuda_not_implemented(op);
#endif
      }
      return grads;
    });
  }
  return y;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding) {
  return conv_op("conv2d", ConvKind::Conv, x, weight, bias, stride, padding, 0);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
                        int64_t padding, int64_t output_padding) {
  return conv_op("conv_transpose2d", ConvKind::Transposed, x, weight, bias, stride, padding, output_padding);
}

}  // namespace engine
