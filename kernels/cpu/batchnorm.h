// BatchNorm2d on [N, C, H, W] tensors, viewed here as [N, C, HW]: every
// channel c is normalised over its m = N * HW values. The per-element math
// is in kernels/common/batchnorm_math.h; this file does the per-channel
// reductions around it.
//
// A forward pass is two steps:
//   1. statistics: mean[C] and inv_std[C] = 1 / sqrt(var + eps), either from
//      the batch (training; also updates the running statistics) or from the
//      running statistics (eval);
//   2. apply: y = (x - mean) * inv_std * weight + bias.
// The backward pass takes the same mean and inv_std (saved by the op).
//
// How the sums are taken (batchnorm.cpp explains the details): every
// (n, c) plane of HW values is reduced by one thread into 8 double partial
// sums (two AVX2 registers of 4 doubles, lane l taking every 8th value), so
// the additions vectorise; the N plane results of a channel are combined in
// double in order of n. One pass over memory per reduction, and the order of
// every addition is fixed by the shape alone.
//
// Determinism: the bits do not depend on the number of threads.
#pragma once
#include <cstdint>

namespace engine::cpu {

// Training statistics of x [N, C, HW] (requires N * HW >= 2):
//   mean[c]    = (1/m) sum x                       over the m = N*HW values of channel c
//   var[c]     = (1/m) sum (x - mean[c])^2         biased: used to normalise
//   inv_std[c] = 1 / sqrt(var[c] + eps)
// and, in place,
//   running_mean[c] = (1 - momentum) running_mean[c] + momentum mean[c]
//   running_var[c]  = (1 - momentum) running_var[c]  + momentum var[c] * m / (m - 1)   (unbiased)
// One pass over x: each plane's sum and its squared deviations from the
// plane's own mean (the plane is still in cache), combined per channel with
// Chan's formula in double; no E[x^2] - E[x]^2 cancellation.
// mean, inv_std, running_mean, running_var: [C].
void batchnorm_batch_stats(const float* x, int64_t batch, int64_t channels, int64_t spatial, double momentum,
                           double eps, float* mean, float* inv_std, float* running_mean, float* running_var);

// Eval statistics: mean[c] = running_mean[c], inv_std[c] = 1 / sqrt(running_var[c] + eps). All [C].
void batchnorm_running_stats(const float* running_mean, const float* running_var, int64_t channels, double eps,
                             float* mean, float* inv_std);

// y[n, c, s] = (x[n, c, s] - mean[c]) * inv_std[c] * weight[c] + bias[c].
// x, y [N, C, HW]; mean, inv_std, weight, bias [C].
void batchnorm_apply(const float* x, const float* mean, const float* inv_std, const float* weight,
                     const float* bias, float* y, int64_t batch, int64_t channels, int64_t spatial);

// Backward of batchnorm_apply with the statistics mean, inv_std [C] it used.
// With xhat = (x - mean) * inv_std, per channel over its m = N*HW values:
//   grad_weight[c] += sum grad_y * xhat
//   grad_bias[c]   += sum grad_y
//   grad_x         += training ? inv_std * (g - mean(g) - xhat * mean(g * xhat))   (g = grad_y * weight)
//                              : grad_y * weight * inv_std
// training says whether mean and inv_std were batch statistics (functions of
// x, differentiated through) or running statistics (constants).
// Two passes: the two sums together (reading x and grad_y once), then grad_x.
// x, grad_y, grad_x [N, C, HW]; weight, grad_weight, grad_bias [C].
// Any gradient pointer may be null.
void batchnorm_backward(const float* x, const float* grad_y, const float* mean, const float* inv_std,
                        const float* weight, bool training, float* grad_x, float* grad_weight, float* grad_bias,
                        int64_t batch, int64_t channels, int64_t spatial);

// The first implementations of the two reductions, kept as the readable
// reference for tests and benchmarks: the same results (to rounding), every
// value accumulated one at a time in double (a serial chain of dependent
// double additions, which the compiler may not reorder, so not vectorised);
// the statistics in two passes over x (the mean, then the squared
// deviations). Same arguments and determinism as above.
void batchnorm_batch_stats_reference(const float* x, int64_t batch, int64_t channels, int64_t spatial,
                                     double momentum, double eps, float* mean, float* inv_std, float* running_mean,
                                     float* running_var);
void batchnorm_backward_reference(const float* x, const float* grad_y, const float* mean, const float* inv_std,
                                  const float* weight, bool training, float* grad_x, float* grad_weight,
                                  float* grad_bias, int64_t batch, int64_t channels, int64_t spatial);

}  // namespace engine::cpu
