// PyTorch's default initialisation of Linear, Conv2d and ConvTranspose2d
// (their reset_parameters()), drawn from the engine's Philox generator.
//
//   weight ~ kaiming_uniform_(a = sqrt(5)):
//            U(-bound, bound), bound = gain * sqrt(3 / fan_in),
//            gain = sqrt(2 / (1 + a^2)) = sqrt(1/3)   =>   bound = 1 / sqrt(fan_in)
//   bias   ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))        (the weight's fan_in)
//
// U(-b, b) has variance b^2 / 3, so the weights have variance 1 / (3 fan_in).
//
// fan_in follows torch.nn.init._calculate_fan_in_and_fan_out: it is
// weight.size(1) times the receptive field (the product of the extents after
// the second). For Linear [out, in] and Conv2d [out, in, k, k] that is the
// number of inputs of one output, as the name says. ConvTranspose2d stores its
// weight as [in, out, k, k], and PyTorch applies the same formula to it, so
// its "fan_in" is out * k * k - a quirk we keep, so that the weights have the
// same distribution as PyTorch's.
//
// The weight is drawn first, then the bias, each consuming the generator's
// stream in turn: the same seed gives the same layer.
#pragma once
#include <cstdint>

#include "core/rng.h"
#include "core/tensor.h"

namespace engine::init {

// weight.size(1) * prod(weight.size(2..)); the weight needs at least 2 dimensions.
int64_t fan_in(const Tensor& weight);

// U(-bound, bound) with bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)).
// Returns the bound it used.
double kaiming_uniform_(Tensor& weight, double a, Generator& gen);

// reset_parameters() of Linear / Conv2d / ConvTranspose2d: the weight by
// kaiming_uniform_(a = sqrt(5)), then (when defined) the bias uniform in
// +-1/sqrt(fan_in(weight)). Runs without recording gradients.
void reset_linear_or_conv(Tensor& weight, Tensor& bias, Generator& gen);

}  // namespace engine::init
