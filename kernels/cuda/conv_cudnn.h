// Convolutions through cuDNN 9 (the "legacy" convolution API, still shipped
// in cuDNN 9's cudnn_cnn library): the same three primitives, with the same
// contract, as our own kernels in conv_implicit_gemm.h, so that conv.cu can
// call either engine for any use.
//
// One convolution in its forward orientation, `conv` (a ConvParams with
// output_padding 0, kernels/common/conv_params.h):
//   in      [conv.batch, conv.in_channels,  conv.in_height,  conv.in_width]
//   out     [conv.batch, conv.out_channels, conv.out_height, conv.out_width]
//   weight  [conv.out_channels, conv.in_channels, conv.kernel_h, conv.kernel_w]
// out_height/out_width must be exactly the convolution's output size.
//
//   conv_forward          cudnnConvolutionForward (+ cudnnAddTensor for the bias)
//   conv_backward_data    cudnnConvolutionBackwardData (+ cudnnAddTensor for the bias);
//                         it is the forward pass of conv_transpose2d
//   conv_backward_weight  cudnnConvolutionBackwardFilter (beta = 1: accumulates)
//   conv_backward_bias    cudnnConvolutionBackwardBias (beta = 1: accumulates)
//
// Choosing the algorithm. cuDNN has several algorithms per pass (implicit
// GEMM, precomputed-index implicit GEMM, FFT, Winograd, ...) with different
// speed, scratch memory ("workspace") and determinism. For each shape and
// pass the choice is made ONCE and cached in a map keyed by the ConvParams,
// the device and the switches of engine_select.h: by cuDNN's heuristics
// (cudnnGet*_v7), or with cudnn_benchmark() by timing every algorithm
// (cudnnFind*). The first algorithm of cuDNN's ranking is taken that
//   - is supported for the shape,
//   - needs at most cudnn_workspace_limit() bytes of workspace,
//   - is deterministic, when cudnn_deterministic() is on,
//   - uses plain FP32 FMA math (CUDNN_FMA_MATH), unless allow_tf32() is on.
// If none qualifies, a fixed deterministic FMA algorithm is used (implicit
// GEMM forward, algorithm 1 for both backward passes) when its workspace fits,
// else the call fails with an error that names the shape and the limit.
// The workspace is borrowed from the engine's allocator for each call.
//
// The handle: one per device, created on first use, set to the current stream
// (stream.h) before every call. All pointers are device pointers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/common/conv_params.h"

namespace engine::cuda::cudnn {

// out = (accumulate ? out : 0) + conv(in, weight) + bias      (bias [out_channels] or null)
void conv_forward(const ConvParams& conv, const float* in, const float* weight, const float* bias, float* out,
                  bool accumulate);

// in_grad = (accumulate ? in_grad : 0) + conv^T(out_grad, weight) + bias   (bias [in_channels] or null)
void conv_backward_data(const ConvParams& conv, const float* out_grad, const float* weight, const float* bias,
                        float* in_grad, bool accumulate);

// weight_grad += sum over n of the correlation of out_grad[n] with in[n]
void conv_backward_weight(const ConvParams& conv, const float* in, const float* out_grad, float* weight_grad);

// bias_grad[c] += sum_{n, i} grad[n, c, i] for grad [batch, channels, pixels].
void conv_backward_bias(int64_t batch, int64_t channels, int64_t pixels, const float* grad, float* bias_grad);

// The algorithm cache: how many (shape, switches, pass) choices it holds, and
// a way to forget them all (tests; after changing GPUs' clocks for a benchmark).
std::size_t algorithm_cache_size();
void clear_algorithm_cache();

// The algorithms chosen so far for `conv` under the current switches, e.g.
// "fwd IMPLICIT_PRECOMP_GEMM, bwd_data ALGO_1, bwd_filter -" ('-': not yet
// chosen). For benchmark labels and debugging.
std::string chosen_algorithms(const ConvParams& conv);

}  // namespace engine::cuda::cudnn
