// The ops: the only way tensors are computed on. Each entry point checks its
// arguments (throwing engine::Error naming the op, the argument, what was
// expected and what was found), picks the CPU or CUDA kernel by the device of
// its inputs, and records a backward node when an input requires grad.
// PyTorch semantics throughout; the PyTorch name is given where it differs.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace engine {

// --- Elementwise (core/ops/elementwise.cpp) ---------------------------------
// Broadcasting is limited to these documented cases, in either operand order:
//   * identical shapes;
//   * one operand has a single element (shape [] or all extents 1): a scalar;
//   * [N, C, 1, 1] against [N, C, H, W] (per-channel, per-sample), and more
//     generally [d0, .., dk, 1, .., 1] against [d0, .., dk, e, .., f]: the
//     smaller operand is constant over the trailing extents of the larger one.
// Anything else is an error, never a silent broadcast.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float factor);   // a * factor
Tensor add_scalar(const Tensor& a, float value);  // a + value
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator*(const Tensor& a, float f) { return scale(a, f); }
inline Tensor operator*(float f, const Tensor& a) { return scale(a, f); }

// dst += src, same shape and device, never recorded (gradient accumulation).
void accumulate_(Tensor& dst, const Tensor& src);

// --- Reductions and loss (core/ops/reduce.cpp) -------------------------------
Tensor sum(const Tensor& a);   // all elements -> shape []
Tensor mean(const Tensor& a);  // all elements -> shape []
// mean((pred - target)^2) over all elements -> shape []; F.mse_loss(reduction='mean').
Tensor mse_loss(const Tensor& pred, const Tensor& target);

// --- Activations (core/ops/activation.cpp) ------------------------------------
// Exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); nn.GELU() default.
Tensor gelu(const Tensor& x);

// --- Convolutions (core/ops/conv.cpp) -----------------------------------------
// x [N, C_in, H, W], weight [C_out, C_in, KH, KW], bias [C_out] or undefined.
// Output [N, C_out, (H + 2p - KH)/s + 1, (W + 2p - KW)/s + 1]. F.conv2d.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding);
// x [N, C_in, H, W], weight [C_in, C_out, KH, KW] (PyTorch's layout), bias [C_out]
// or undefined. Output [N, C_out, (H-1)s - 2p + KH + output_padding, ...].
// F.conv_transpose2d with groups 1, dilation 1.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
                        int64_t padding, int64_t output_padding = 0);

// --- Normalisation (core/ops/batchnorm.cpp) -----------------------------------
// x [N, C, H, W]; weight, bias, running_mean, running_var [C].
// training: normalise with the batch mean and biased variance, and update
//   running_mean = (1 - momentum) running_mean + momentum mean,
//   running_var  = (1 - momentum) running_var  + momentum unbiased_var
//   in place (not recorded). eval: normalise with the running statistics.
// y = (x - mean) / sqrt(var + eps) * weight + bias. F.batch_norm.
// (num_batches_tracked is the module's business: layers/batchnorm.)
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                    Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// --- Pooling, linear, concat (core/ops/pool.cpp, linear.cpp, concat.cpp) -------
// x [N, C, H, W] -> [N, C, (H - k)/s + 1, (W - k)/s + 1]; no padding; stride 0 means k.
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0);
// x [N, in], weight [out, in], bias [out] or undefined -> [N, out] = x W^T + b.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
// Concatenates along `dim`; all other extents must agree. torch.cat.
Tensor concat(const std::vector<Tensor>& tensors, int64_t dim);

}  // namespace engine
