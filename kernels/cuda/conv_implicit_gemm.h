// Our own convolution kernels: implicit GEMM, tiled through shared memory,
// with no im2col buffer. The step-by-step explanation is in docs/cuda_conv.md;
// the kernels are in conv_implicit_gemm.cu, on the tile engine of
// gemm_tile.cuh.
//
// Three primitives cover conv2d and conv_transpose2d, forward and backward
// (kernels/cuda/conv.cu maps the six uses onto them). Each is stated for ONE
// convolution in its forward orientation, `conv` (a ConvParams with
// output_padding 0, kernels/common/conv_params.h):
//
//   in      [conv.batch, conv.in_channels,  conv.in_height,  conv.in_width]
//   out     [conv.batch, conv.out_channels, conv.out_height, conv.out_width]
//   weight  [conv.out_channels, conv.in_channels, conv.kernel_h, conv.kernel_w]
//
// and out[n, co, oh, ow] = sum_{ci, ki, kj} weight[co, ci, ki, kj] * in[n, ci, oh*s - p + ki, ow*s - p + kj]
// (in = 0 outside the image). out_height/out_width need not be the largest
// the formula allows; they must be at most that (a transposed convolution's
// output_padding makes its "in" larger than the conv of its "out" would need).
//
// All pointers are device pointers; the work is queued on the current stream
// (stream.h) of the current device. Shapes whose tensors have 2^31 elements or
// more are rejected (32-bit index arithmetic); cuDNN handles those.
#pragma once
#include <cstdint>

#include "kernels/common/conv_params.h"
#include "kernels/common/host_device.h"

namespace engine::cuda::implicit_gemm {

// out = (accumulate ? out : 0) + conv(in, weight) + bias      (bias [out_channels] or null)
// When the output has few tiles (small images) and a long reduction, the
// reduction is split into chunks summed in a fixed order (as for the weight
// gradient below): deterministic either way.
void conv_forward(const ConvParams& conv, const float* in, const float* weight, const float* bias, float* out,
                  bool accumulate);

// in_grad = (accumulate ? in_grad : 0) + conv^T(out_grad, weight) + bias   (bias [in_channels] or null)
// where conv^T is the adjoint of conv_forward in its input: the data gradient
// of conv2d, and the forward pass of conv_transpose2d.
void conv_backward_data(const ConvParams& conv, const float* out_grad, const float* weight, const float* bias,
                        float* in_grad, bool accumulate);

// weight_grad[co, ci, ki, kj] += sum_{n, oh, ow} out_grad[n, co, oh, ow] * in[n, ci, oh*s - p + ki, ow*s - p + kj]
// Deterministic: the sum over (n, oh, ow) is split into a number of chunks
// that depends on the shape alone; each chunk is summed by its own blocks into
// a partial, and a second kernel adds the partials in chunk order.
void conv_backward_weight(const ConvParams& conv, const float* in, const float* out_grad, float* weight_grad);

// bias_grad[c] += sum_{n, i} grad[n, c, i] for grad [batch, channels, pixels].
// One block per channel sums in a fixed order (no atomics).
void conv_backward_bias(int64_t batch, int64_t channels, int64_t pixels, const float* grad, float* bias_grad);

// The number of split-K chunks conv_backward_weight uses for a GEMM of
// [m, n] outputs and a reduction of length k: a function of the shape only
// (exposed for the tests and the docs).
int weight_grad_chunks(int64_t m, int64_t n, int64_t k);

// Division by a run-time constant with a multiply and a shift.
//
// The kernels turn flat indices back into coordinates (pixel -> image, row,
// column; k -> channel, kernel row, kernel column), one integer division and
// remainder per coordinate. A 32-bit division is a ~20-instruction software
// routine on the GPU; with the divisor fixed per launch it can be replaced by
//   q = (umulhi(n, multiplier) + n) >> shift
// where shift = ceil(log2 d) and multiplier = floor(2^32 (2^shift - d) / d) + 1
// (the round-up method of Granlund and Montgomery). Exact for every
// 0 <= n < 2^31 and 1 <= d < 2^31; the sum umulhi + n stays below 2^32 there.
// Usable on host and device, so the CPU tests check it exhaustively.
struct FastDivmod {
  uint32_t divisor = 1;
  uint32_t multiplier = 1;
  uint32_t shift = 0;

  FastDivmod() = default;
  // d >= 1 (d = 0 is treated as 1: the kernels never divide by an empty extent).
  ENGINE_HOST_DEVICE explicit FastDivmod(uint32_t d) {
    divisor = d == 0 ? 1 : d;
    shift = 0;
    while ((uint64_t{1} << shift) < divisor) ++shift;
    multiplier = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor)) / divisor + 1);
  }

  static ENGINE_HOST_DEVICE uint32_t umulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
  }

  // n / divisor, for 0 <= n < 2^31.
  ENGINE_HOST_DEVICE int div(int n) const {
    const uint32_t u = static_cast<uint32_t>(n);
    return static_cast<int>((umulhi(u, multiplier) + u) >> shift);
  }
  // quotient = n / divisor, remainder = n % divisor.
  ENGINE_HOST_DEVICE void divmod(int n, int& quotient, int& remainder) const {
    quotient = div(n);
    remainder = n - quotient * static_cast<int>(divisor);
  }
};

}  // namespace engine::cuda::implicit_gemm
