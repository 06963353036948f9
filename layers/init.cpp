#include "layers/init.h"

#include <cmath>

#include "core/autograd.h"

namespace engine::init {

int64_t fan_in(const Tensor& weight) {
  ENGINE_CHECK(weight.defined() && weight.dim() >= 2, "init::fan_in: expected a weight with at least 2 dimensions, got ",
               weight.defined() ? shape_str(weight.shape()) : std::string("an undefined Tensor"));
  int64_t receptive_field = 1;
  for (int64_t d = 2; d < weight.dim(); ++d) receptive_field *= weight.size(d);
  return weight.size(1) * receptive_field;
}

double kaiming_uniform_(Tensor& weight, double a, Generator& gen) {
  const int64_t fan = fan_in(weight);
  ENGINE_CHECK(fan > 0, "init::kaiming_uniform_: fan_in is 0 for weight of shape ", shape_str(weight.shape()));
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan));
  autograd::NoGradGuard no_grad;
  uniform_(weight, static_cast<float>(-bound), static_cast<float>(bound), gen);
  return bound;
}

void reset_linear_or_conv(Tensor& weight, Tensor& bias, Generator& gen) {
  kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(weight)));
    autograd::NoGradGuard no_grad;
    uniform_(bias, static_cast<float>(-bound), static_cast<float>(bound), gen);
  }
}

}  // namespace engine::init
