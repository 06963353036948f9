// BatchNorm, one element at a time: shared by the CPU kernels
// (kernels/cpu/batchnorm.cpp) and the CUDA kernels. The per-channel
// statistics (mean, inv_std, and the two sums of the backward pass) are
// reductions and live in the kernels; these functions are what each element
// does with them.
//
// For channel c with statistics mean and inv_std = 1 / sqrt(var + eps):
//     xhat = (x - mean) * inv_std                 the normalised input
//     y    = xhat * weight + bias                 the affine transform
//
// Backward, with g = dL/dy * weight (the gradient reaching xhat):
//   * eval mode: mean and inv_std are constants (the running statistics), so
//         dL/dx = g * inv_std
//   * training mode: mean and inv_std are functions of every x of the channel
//     (m = N*H*W values), and differentiating through them gives
//         dL/dx = inv_std * (g - mean_m(g) - xhat * mean_m(g * xhat))
//     The two channel means remove from g its components along the constant
//     direction (the mean was subtracted) and along xhat (the variance was
//     divided out): the output of BN cannot change by shifting or scaling x.
// In both modes dL/dweight = sum(dL/dy * xhat) and dL/dbias = sum(dL/dy) per
// channel.
#pragma once
#include "kernels/common/host_device.h"

namespace engine::math {

// xhat = (x - mean) * inv_std.
ENGINE_HOST_DEVICE float batchnorm_normalize(float x, float mean, float inv_std) { return (x - mean) * inv_std; }

// y = (x - mean) * inv_std * weight + bias.
ENGINE_HOST_DEVICE float batchnorm_apply(float x, float mean, float inv_std, float weight, float bias) {
  return (x - mean) * inv_std * weight + bias;
}

// Training-mode dL/dx = inv_std * (g - mean_g - xhat * mean_g_xhat), where
// g = grad_y * weight, mean_g = mean over the channel of g and
// mean_g_xhat = mean over the channel of g * xhat.
ENGINE_HOST_DEVICE float batchnorm_input_grad_train(float grad_y, float weight, float xhat, float inv_std,
                                                    float mean_g, float mean_g_xhat) {
  return inv_std * (grad_y * weight - mean_g - xhat * mean_g_xhat);
}

// Eval-mode dL/dx = grad_y * weight * inv_std (statistics are constants).
ENGINE_HOST_DEVICE float batchnorm_input_grad_eval(float grad_y, float weight, float inv_std) {
  return grad_y * weight * inv_std;
}

}  // namespace engine::math
