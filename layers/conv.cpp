// Conv2d and ConvTranspose2d: parameters, PyTorch initialisation, and the op call.
#include "core/ops.h"
#include "layers/init.h"
#include "layers/layers.h"

namespace engine {
namespace {

void check_conv_arguments(const char* layer, int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                          int64_t stride, int64_t padding) {
  ENGINE_CHECK(in_channels > 0, layer, ": in_channels must be positive, got ", in_channels);
  ENGINE_CHECK(out_channels > 0, layer, ": out_channels must be positive, got ", out_channels);
  ENGINE_CHECK(kernel_size > 0, layer, ": kernel_size must be positive, got ", kernel_size);
  ENGINE_CHECK(stride > 0, layer, ": stride must be positive, got ", stride);
  ENGINE_CHECK(padding >= 0, layer, ": padding must be non-negative, got ", padding);
}

}  // namespace

Conv2d::Conv2d(int64_t in_channels_, int64_t out_channels_, int64_t kernel_size_, int64_t stride_,
               int64_t padding_, bool with_bias, Generator& gen)
    : in_channels(in_channels_), out_channels(out_channels_), kernel_size(kernel_size_), stride(stride_),
      padding(padding_) {
  check_conv_arguments("Conv2d", in_channels, out_channels, kernel_size, stride, padding);
  weight = register_parameter("weight", Tensor::empty({out_channels, in_channels, kernel_size, kernel_size}));
  if (with_bias) bias = register_parameter("bias", Tensor::empty({out_channels}));
  // fan_in = in * k * k.
  init::reset_linear_or_conv(weight, bias, gen);
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, stride, padding); }

ConvTranspose2d::ConvTranspose2d(int64_t in_channels_, int64_t out_channels_, int64_t kernel_size_,
                                 int64_t stride_, int64_t padding_, int64_t output_padding_, bool with_bias,
                                 Generator& gen)
    : in_channels(in_channels_), out_channels(out_channels_), kernel_size(kernel_size_), stride(stride_),
      padding(padding_), output_padding(output_padding_) {
  check_conv_arguments("ConvTranspose2d", in_channels, out_channels, kernel_size, stride, padding);
  // PyTorch: output padding must be smaller than either stride or dilation (1 here).
  ENGINE_CHECK(output_padding >= 0 && output_padding < stride, "ConvTranspose2d: output_padding must be in [0, stride = ",
               stride, "), got ", output_padding);
  weight = register_parameter("weight", Tensor::empty({in_channels, out_channels, kernel_size, kernel_size}));
  if (with_bias) bias = register_parameter("bias", Tensor::empty({out_channels}));
  // PyTorch's quirk, kept on purpose: fan_in is computed from dimension 1 of
  // the [in, out, k, k] weight, i.e. fan_in = out * k * k (see layers/init.h).
  init::reset_linear_or_conv(weight, bias, gen);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  return conv_transpose2d(x, weight, bias, stride, padding, output_padding);
}

}  // namespace engine
