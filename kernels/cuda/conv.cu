// The GPU convolution dispatcher: see conv.h for the mapping of conv2d and
// conv_transpose2d onto the three primitives of either engine.
#include "kernels/cuda/conv.h"

#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/conv_implicit_gemm.h"
#include "kernels/cuda/engine_select.h"

namespace engine::cuda {
namespace {

// The two engines behind one interface.
void forward(const ConvParams& conv, const float* in, const float* weight, const float* bias, float* out,
             bool accumulate) {
  if (conv_engine() == ConvEngine::cudnn)
    cudnn::conv_forward(conv, in, weight, bias, out, accumulate);
  else
    implicit_gemm::conv_forward(conv, in, weight, bias, out, accumulate);
}

void backward_data(const ConvParams& conv, const float* out_grad, const float* weight, const float* bias,
                   float* in_grad, bool accumulate) {
  if (conv_engine() == ConvEngine::cudnn)
    cudnn::conv_backward_data(conv, out_grad, weight, bias, in_grad, accumulate);
  else
    implicit_gemm::conv_backward_data(conv, out_grad, weight, bias, in_grad, accumulate);
}

void backward_weight(const ConvParams& conv, const float* in, const float* out_grad, float* weight_grad) {
  if (conv_engine() == ConvEngine::cudnn)
    cudnn::conv_backward_weight(conv, in, out_grad, weight_grad);
  else
    implicit_gemm::conv_backward_weight(conv, in, out_grad, weight_grad);
}

void backward_bias(int64_t batch, int64_t channels, int64_t pixels, const float* grad, float* bias_grad) {
  if (conv_engine() == ConvEngine::cudnn)
    cudnn::conv_backward_bias(batch, channels, pixels, grad, bias_grad);
  else
    implicit_gemm::conv_backward_bias(batch, channels, pixels, grad, bias_grad);
}

}  // namespace

ConvParams transposed_as_conv(const ConvParams& p) {
  ConvParams c;
  c.batch = p.batch;
  c.in_channels = p.out_channels;
  c.in_height = p.out_height;
  c.in_width = p.out_width;
  c.out_channels = p.in_channels;
  c.out_height = p.in_height;
  c.out_width = p.in_width;
  c.kernel_h = p.kernel_h;
  c.kernel_w = p.kernel_w;
  c.stride = p.stride;
  c.padding = p.padding;
  c.output_padding = 0;
  return c;
}

void conv2d_forward(const ConvParams& p, const float* x, const float* weight, const float* bias, float* y) {
  if (p.batch == 0) return;  // nothing to compute (and cuDNN rejects an empty batch)
  forward(p, x, weight, bias, y, /*accumulate=*/false);
}

void conv2d_backward(const ConvParams& p, const float* x, const float* weight, const float* grad_y, float* grad_x,
                     float* grad_weight, float* grad_bias) {
  if (p.batch == 0) return;  // every gradient gets += 0
  if (grad_x != nullptr) backward_data(p, grad_y, weight, nullptr, grad_x, /*accumulate=*/true);
  if (grad_weight != nullptr) backward_weight(p, x, grad_y, grad_weight);
  if (grad_bias != nullptr) backward_bias(p.batch, p.out_channels, p.out_height * p.out_width, grad_y, grad_bias);
}

void conv_transpose2d_forward(const ConvParams& p, const float* x, const float* weight, const float* bias,
                              float* y) {
  if (p.batch == 0) return;
  // y = conv^T(x): the data gradient of the convolution from y's shape to x's.
  backward_data(transposed_as_conv(p), x, weight, bias, y, /*accumulate=*/false);
}

void conv_transpose2d_backward(const ConvParams& p, const float* x, const float* weight, const float* grad_y,
                               float* grad_x, float* grad_weight, float* grad_bias) {
  if (p.batch == 0) return;
  const ConvParams conv = transposed_as_conv(p);
  // grad_x += conv(grad_y): the forward pass of that convolution.
  if (grad_x != nullptr) forward(conv, grad_y, weight, nullptr, grad_x, /*accumulate=*/true);
  // grad_weight += its weight gradient, with grad_y as its input and x as its output gradient.
  if (grad_weight != nullptr) backward_weight(conv, grad_y, x, grad_weight);
  if (grad_bias != nullptr) backward_bias(p.batch, p.out_channels, p.out_height * p.out_width, grad_y, grad_bias);
}

}  // namespace engine::cuda
