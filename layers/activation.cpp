#include "core/ops.h"
#include "layers/layers.h"

namespace engine {

Tensor GELU::forward(const Tensor& x) { return gelu(x); }

}  // namespace engine
