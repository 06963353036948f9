// The shapes of one 2-d convolution or transposed convolution, shared by the
// CPU and CUDA backends (plain integers, no allocation, usable in device code).
//
// Naming: "in" is always the op's input x and "out" the op's output y.
//
//   conv2d            x [batch, in_channels, in_height, in_width]
//                     weight [out_channels, in_channels, kernel_h, kernel_w]
//                     y [batch, out_channels, out_height, out_width]
//                     out = (in + 2 padding - kernel) / stride + 1      (floor)
//
//   conv_transpose2d  x [batch, in_channels, in_height, in_width]
//                     weight [in_channels, out_channels, kernel_h, kernel_w]  (PyTorch's layout)
//                     y [batch, out_channels, out_height, out_width]
//                     out = (in - 1) stride - 2 padding + kernel + output_padding
//
// A transposed convolution is the adjoint of the convolution that maps y's
// shape back to x's shape with the same weight (see docs/conv.md); the two
// size formulas are each other's inverse, output_padding (< stride) picking
// one of the `stride` output sizes that the floor in the first formula maps
// to the same input size.
#pragma once
#include <cstdint>

#include "kernels/common/host_device.h"

namespace engine {

struct ConvParams {
  int64_t batch = 0;
  int64_t in_channels = 0;
  int64_t in_height = 0;
  int64_t in_width = 0;
  int64_t out_channels = 0;
  int64_t out_height = 0;
  int64_t out_width = 0;
  int64_t kernel_h = 0;
  int64_t kernel_w = 0;
  int64_t stride = 1;          // the same along height and width
  int64_t padding = 0;         // zeros on every side
  int64_t output_padding = 0;  // transposed convolution only; 0 for conv2d
};

// floor(a / b) for b > 0 and any sign of a (C++ '/' rounds toward zero).
ENGINE_HOST_DEVICE int64_t conv_floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// Output extent of a convolution along one axis: floor((in + 2p - k) / s) + 1.
// Zero or negative when the padded input is shorter than the kernel (the op
// entry points reject that, quoting the value).
ENGINE_HOST_DEVICE int64_t conv2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding) {
  return conv_floor_div(in + 2 * padding - kernel, stride) + 1;
}

// Output extent of a transposed convolution along one axis:
// (in - 1) s - 2p + k + output_padding.
ENGINE_HOST_DEVICE int64_t conv_transpose2d_output_size(int64_t in, int64_t kernel, int64_t stride,
                                                        int64_t padding, int64_t output_padding) {
  return (in - 1) * stride - 2 * padding + kernel + output_padding;
}

// The full description of conv2d(x, weight) from x's and weight's extents.
ENGINE_HOST_DEVICE ConvParams make_conv2d_params(int64_t batch, int64_t in_channels, int64_t in_height,
                                                 int64_t in_width, int64_t out_channels, int64_t kernel_h,
                                                 int64_t kernel_w, int64_t stride, int64_t padding) {
  ConvParams p;
  p.batch = batch;
  p.in_channels = in_channels;
  p.in_height = in_height;
  p.in_width = in_width;
  p.out_channels = out_channels;
  p.kernel_h = kernel_h;
  p.kernel_w = kernel_w;
  p.stride = stride;
  p.padding = padding;
  p.output_padding = 0;
  p.out_height = conv2d_output_size(in_height, kernel_h, stride, padding);
  p.out_width = conv2d_output_size(in_width, kernel_w, stride, padding);
  return p;
}

// The full description of conv_transpose2d(x, weight) from x's and weight's extents.
ENGINE_HOST_DEVICE ConvParams make_conv_transpose2d_params(int64_t batch, int64_t in_channels, int64_t in_height,
                                                           int64_t in_width, int64_t out_channels,
                                                           int64_t kernel_h, int64_t kernel_w, int64_t stride,
                                                           int64_t padding, int64_t output_padding) {
  ConvParams p;
  p.batch = batch;
  p.in_channels = in_channels;
  p.in_height = in_height;
  p.in_width = in_width;
  p.out_channels = out_channels;
  p.kernel_h = kernel_h;
  p.kernel_w = kernel_w;
  p.stride = stride;
  p.padding = padding;
  p.output_padding = output_padding;
  p.out_height = conv_transpose2d_output_size(in_height, kernel_h, stride, padding, output_padding);
  p.out_width = conv_transpose2d_output_size(in_width, kernel_w, stride, padding, output_padding);
  return p;
}

// Multiply-adds of the forward pass (FLOPs are twice this; the backward pass,
// data and weight gradients, costs twice the forward). conv2d: every y element
// is a dot product of length in_channels * kernel_h * kernel_w.
// conv_transpose2d: every x element is scattered through
// out_channels * kernel_h * kernel_w weights.
ENGINE_HOST_DEVICE int64_t conv2d_forward_macs(const ConvParams& p) {
  return p.batch * p.out_channels * p.out_height * p.out_width * p.in_channels * p.kernel_h * p.kernel_w;
}
ENGINE_HOST_DEVICE int64_t conv_transpose2d_forward_macs(const ConvParams& p) {
  return p.batch * p.in_channels * p.in_height * p.in_width * p.out_channels * p.kernel_h * p.kernel_w;
}

}  // namespace engine
