#include "core/ops.h"
#include "layers/init.h"
#include "layers/layers.h"

namespace engine {

Linear::Linear(int64_t in_features_, int64_t out_features_, bool with_bias, Generator& gen)
    : in_features(in_features_), out_features(out_features_) {
  ENGINE_CHECK(in_features > 0, "Linear: in_features must be positive, got ", in_features);
  ENGINE_CHECK(out_features > 0, "Linear: out_features must be positive, got ", out_features);
  weight = register_parameter("weight", Tensor::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", Tensor::empty({out_features}));
  // fan_in = in_features.
  init::reset_linear_or_conv(weight, bias, gen);
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

}  // namespace engine
