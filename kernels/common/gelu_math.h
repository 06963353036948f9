// GELU, the Gaussian Error Linear Unit, one element at a time: shared by the
// CPU kernels (kernels/cpu/activation.cpp) and the CUDA kernels.
//
// GELU weights its input by the probability that a standard normal variable
// is below it:
//     gelu(x)  = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
// where Phi is the standard normal CDF. Its derivative, by the product rule:
//     gelu'(x) = Phi(x) + x * phi(x),     phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
// the standard normal density. This is the exact form (PyTorch's nn.GELU()
// default, approximate='none'), not the tanh approximation.
//
// Far out on either side: for x >> 0, erf -> 1 and gelu(x) = x, gelu' = 1;
// for x << 0, 1 + erf -> 0 and gelu(x) = -0, gelu' = 0 (exp underflows to 0,
// never NaN). PyTorch evaluates the same formula in float, so the two agree
// there bit for bit in the common case.
#pragma once
#include <math.h>  // erff, expf: in the global namespace on the host and in CUDA device code

#include "kernels/common/host_device.h"

namespace engine::math {

constexpr float kInvSqrt2 = 0.70710678118654752440f;     // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;   // 1 / sqrt(2 pi)

// Phi(x) = 0.5 (1 + erf(x / sqrt 2)): the standard normal CDF.
ENGINE_HOST_DEVICE float normal_cdf(float x) { return 0.5f * (1.0f + erff(x * kInvSqrt2)); }

// phi(x) = exp(-x^2 / 2) / sqrt(2 pi): the standard normal density.
ENGINE_HOST_DEVICE float normal_pdf(float x) { return kInvSqrt2Pi * expf(-0.5f * x * x); }

// gelu(x) = 0.5 x (1 + erf(x / sqrt 2)).
ENGINE_HOST_DEVICE float gelu(float x) { return 0.5f * x * (1.0f + erff(x * kInvSqrt2)); }

// d gelu / dx = Phi(x) + x phi(x).
ENGINE_HOST_DEVICE float gelu_derivative(float x) { return normal_cdf(x) + x * normal_pdf(x); }

}  // namespace engine::math
