// 2-d convolution and transposed convolution on the GPU: the dispatcher.
//
// Same names, arguments and contract as the CPU's kernels/cpu/conv.h (read
// that header for the math and the shapes), on device pointers, queued on the
// current stream (stream.h) of the current device:
//   x  [p.batch, p.in_channels,  p.in_height,  p.in_width]
//   y  [p.batch, p.out_channels, p.out_height, p.out_width]
//   conv2d           weight [p.out_channels, p.in_channels, p.kernel_h, p.kernel_w]
//   conv_transpose2d weight [p.in_channels, p.out_channels, p.kernel_h, p.kernel_w]
//   bias [p.out_channels], or null for none.
// Backward functions ACCUMULATE (+=) into grad_x, grad_weight and grad_bias;
// any of the three may be null, and then x (for grad_weight) or weight (for
// grad_x) may be null too.
//
// Each call runs on the engine selected at run time (engine_select.h):
// cuDNN (conv_cudnn.h) or our implicit-GEMM kernels (conv_implicit_gemm.h).
// Both provide three primitives for ONE convolution in its forward
// orientation, and the six uses map onto them:
//
//   conv2d forward              conv_forward(p)              y = conv(x) + bias
//   conv2d grad_x               conv_backward_data(p)        grad_x += conv^T(grad_y)
//   conv2d grad_weight          conv_backward_weight(p)      grad_weight += grad_y * x
//   conv_transpose2d forward    conv_backward_data(p^T)      y = conv^T(x) + bias
//   conv_transpose2d grad_x     conv_forward(p^T)            grad_x += conv(grad_y)
//   conv_transpose2d grad_weight conv_backward_weight(p^T)   with in = grad_y, out_grad = x
//   bias gradient (both)        conv_backward_bias           grad_bias += sums of grad_y
//
// where p^T is the convolution that maps y's shape to x's shape (in and out
// swapped): a transposed convolution IS the data gradient of that
// convolution, and its PyTorch weight layout [C_in, C_out, KH, KW] is exactly
// that convolution's [out_channels, in_channels, KH, KW].
#pragma once
#include "kernels/common/conv_params.h"

namespace engine::cuda {

void conv2d_forward(const ConvParams& p, const float* x, const float* weight, const float* bias, float* y);

void conv2d_backward(const ConvParams& p, const float* x, const float* weight, const float* grad_y, float* grad_x,
                     float* grad_weight, float* grad_bias);

void conv_transpose2d_forward(const ConvParams& p, const float* x, const float* weight, const float* bias,
                              float* y);

void conv_transpose2d_backward(const ConvParams& p, const float* x, const float* weight, const float* grad_y,
                               float* grad_x, float* grad_weight, float* grad_bias);

// The convolution whose data gradient is the transposed convolution `p`:
// in = p's y, out = p's x (output_padding 0).
ConvParams transposed_as_conv(const ConvParams& p);

}  // namespace engine::cuda
