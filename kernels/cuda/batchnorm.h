// CUDA twins of kernels/cpu/batchnorm.h (same functions, same arguments,
// device pointers, current stream), plus the fused BatchNorm-apply + GELU
// that the UNet's Conv -> BN -> GELU blocks use. Read kernels/cpu/batchnorm.h
// for the math; the per-element formulas are the shared ones of
// kernels/common/batchnorm_math.h and gelu_math.h.
//
// Determinism: every per-channel sum is a fixed tree. Channel c's m = N * HW
// values are split by sample into `chunks` groups of consecutive planes
// (chunks = min(N, 32), a function of the shape only); block (chunk, c) sums
// its planes, thread t taking positions t, t + 256, ... of each plane (in
// double), then a block tree; a per-channel kernel adds the chunk sums in
// order. No atomics: the same bits on every run. Against the CPU, which adds
// the plane sums sequentially, only the order of double additions differs.
#pragma once
#include <cstdint>

namespace engine::cuda {

// Training statistics of x [N, C, HW] (requires N * HW >= 2): mean[C],
// inv_std[C] = 1 / sqrt(biased var + eps), and in place
//   running_mean = (1 - momentum) running_mean + momentum mean
//   running_var  = (1 - momentum) running_var  + momentum unbiased var.
// Two passes over x (mean, then squared deviations from it), all in double.
void batchnorm_batch_stats(const float* x, int64_t batch, int64_t channels, int64_t spatial, double momentum,
                           double eps, float* mean, float* inv_std, float* running_mean, float* running_var);

// Eval statistics: mean[c] = running_mean[c], inv_std[c] = 1 / sqrt(running_var[c] + eps).
void batchnorm_running_stats(const float* running_mean, const float* running_var, int64_t channels, double eps,
                             float* mean, float* inv_std);

// y[n, c, s] = (x[n, c, s] - mean[c]) * inv_std[c] * weight[c] + bias[c].
void batchnorm_apply(const float* x, const float* mean, const float* inv_std, const float* weight,
                     const float* bias, float* y, int64_t batch, int64_t channels, int64_t spatial);

// Backward of batchnorm_apply (and, in training mode, of the batch
// statistics): see kernels/cpu/batchnorm.h. Accumulates (+=); any gradient
// pointer may be null.
void batchnorm_backward(const float* x, const float* grad_y, const float* mean, const float* inv_std,
                        const float* weight, bool training, float* grad_x, float* grad_weight, float* grad_bias,
                        int64_t batch, int64_t channels, int64_t spatial);

// --- Fused BatchNorm apply + GELU ------------------------------------------
// y = gelu(z),  z = (x - mean) * inv_std * weight + bias:
// batchnorm_apply followed by gelu_forward in ONE pass over memory (read x,
// write y) instead of two (read x, write z, read z, write y). The unfused
// pair stays the reference: the tests compare the two.
void batchnorm_gelu_apply(const float* x, const float* mean, const float* inv_std, const float* weight,
                          const float* bias, float* y, int64_t batch, int64_t channels, int64_t spatial);

// Its backward: batchnorm_backward with grad_y replaced by the gradient
// reaching z,  grad_z = grad_y * gelu'(z),  z recomputed from x on the fly
// (never stored). Needs bias to recompute z. Accumulates; any gradient
// pointer may be null.
void batchnorm_gelu_backward(const float* x, const float* grad_y, const float* mean, const float* inv_std,
                             const float* weight, const float* bias, bool training, float* grad_x,
                             float* grad_weight, float* grad_bias, int64_t batch, int64_t channels, int64_t spatial);

}  // namespace engine::cuda
