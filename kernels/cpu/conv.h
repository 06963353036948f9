// 2-d convolution and transposed convolution on the CPU: im2col + GEMM.
//
// All tensors are contiguous NCHW float arrays whose shapes are given by a
// ConvParams p (kernels/common/conv_params.h):
//   x  [p.batch, p.in_channels,  p.in_height,  p.in_width]
//   y  [p.batch, p.out_channels, p.out_height, p.out_width]
//   conv2d           weight [p.out_channels, p.in_channels, p.kernel_h, p.kernel_w]
//   conv_transpose2d weight [p.in_channels, p.out_channels, p.kernel_h, p.kernel_w]
//   bias [p.out_channels], or null for none.
// The params must be consistent (out sizes from make_conv2d_params /
// make_conv_transpose2d_params, batch >= 0, every other extent >= 1,
// stride >= 1, padding >= 0, 0 <= output_padding < stride):
// the op entry points in core/ops/conv.cpp check that before calling here.
//
// The idea (docs/conv.md): for one image, lay every receptive field out as a
// column of a matrix (im2col); the convolution is then one matrix product of
// the weight with that matrix. The transposed convolution runs the same
// product backwards: transposed weight times x gives the columns, and col2im
// (the adjoint of im2col) scatters-adds them into the image y.
//
// A GEMM is fast only when its matrices are wide enough to amortise packing
// the weight: an image of 28x28 outputs gives 784 columns, but one of 7x7
// only 49 and one of 1x1 (the UNet's Unflatten) a single column, a
// matrix-vector product. So images are processed in groups whose column
// matrices sit side by side, [K, group * P] with at least ~256 columns, and
// each group is one GEMM. Groups run in parallel (OpenMP, buffers per
// thread). Weight and bias gradients sum over groups: each of a fixed number
// of chunks of consecutive groups sums its groups in order into its own
// partial, and the partials are then added in chunk order. Groups and chunks
// depend on the shapes alone, never on the thread count, so the results are
// bitwise the same whatever the thread count.
//
// Backward functions ACCUMULATE (+=) into grad_x, grad_weight and grad_bias;
// any of the three may be null when that gradient is not needed. x is read
// only for grad_weight and weight only for grad_x, so either may be null
// when that gradient is not requested.
#pragma once
#include <cstdint>

#include "kernels/common/conv_params.h"

namespace engine::cpu {

// y = conv2d(x, weight) + bias:
// y[n, co, oh, ow] = bias[co] + sum_{ci, ki, kj} weight[co, ci, ki, kj]
//                                 * x[n, ci, oh*s - p + ki, ow*s - p + kj]   (x = 0 outside the image)
void conv2d_forward(const ConvParams& p, const float* x, const float* weight, const float* bias, float* y);

// Given grad_y = dL/dy [N, C_out, OH, OW]:
//   grad_x      += conv_transpose2d(grad_y, weight)       (col2im of weight^T grad_y)
//   grad_weight += sum_n grad_y[n] * im2col(x[n])^T
//   grad_bias   += sum over n, oh, ow of grad_y
void conv2d_backward(const ConvParams& p, const float* x, const float* weight, const float* grad_y, float* grad_x,
                     float* grad_weight, float* grad_bias);

// y = conv_transpose2d(x, weight) + bias, the scatter
// y[n, co, i*s - p + ki, j*s - p + kj] += x[n, ci, i, j] * weight[ci, co, ki, kj]
// (targets outside y dropped), then y[n, co, :, :] += bias[co].
void conv_transpose2d_forward(const ConvParams& p, const float* x, const float* weight, const float* bias,
                              float* y);

// Given grad_y [N, C_out, OH, OW]:
//   grad_x      += conv2d(grad_y, weight), reading weight [C_in, C_out, KH, KW]
//                  as a conv2d weight (C_in output channels): weight im2col(grad_y[n])
//   grad_weight += sum_n x[n] * im2col(grad_y[n])^T
//   grad_bias   += sum over n, oh, ow of grad_y
void conv_transpose2d_backward(const ConvParams& p, const float* x, const float* weight, const float* grad_y,
                               float* grad_x, float* grad_weight, float* grad_bias);

// --- The two data movements the GEMMs are built on ---------------------------
// One image [channels, height, width] and its column matrix
// [channels * kernel_h * kernel_w, out_height * out_width], where out_* are the
// conv2d output sizes of this image:
//   columns[(c*kernel_h + ki)*kernel_w + kj, oh*out_width + ow]
//       = image[c, oh*stride - padding + ki, ow*stride - padding + kj]   (0 outside the image)
struct ImageGeometry {
  int64_t channels;
  int64_t height;
  int64_t width;
  int64_t kernel_h;
  int64_t kernel_w;
  int64_t stride;
  int64_t padding;
  int64_t out_height;
  int64_t out_width;
};

// `columns_stride` is the distance between rows of the column matrix
// (>= out_height * out_width): a group of images keeps its column matrices
// side by side in one wider matrix.
//
// Writes every element of the column matrix (a gather; padding positions become 0).
void im2col(const ImageGeometry& g, const float* image, float* columns, int64_t columns_stride);

// The adjoint of im2col: image[c, ih, iw] += every column entry that im2col
// would have copied from there (a scatter-add; entries that fall into the
// padding are dropped). Accumulates into `image`.
void col2im_add(const ImageGeometry& g, const float* columns, int64_t columns_stride, float* image);

}  // namespace engine::cpu
