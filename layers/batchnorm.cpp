// BatchNorm2d: the module owns the running statistics and the batch counter;
// the op (core/ops.h: batch_norm2d) normalises and updates the statistics.
#include "core/dispatch.h"
#include "core/ops.h"
#include "layers/layers.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/elementwise.h"
#endif

namespace engine {
namespace {

// num_batches_tracked += 1, in place, on the tensor's device.
void increment_counter(Tensor& counter) {
  if (counter.device().is_cpu()) {
    counter.data<int64_t>()[0] += 1;
    return;
  }
#ifdef ENGINE_WITH_CUDA
  // A one-thread kernel on the device: no round trip through the host, so a
  // training step never waits here.
  cuda::increment_i64(counter.data<int64_t>());
#else
  cuda_not_implemented("BatchNorm2d: num_batches_tracked += 1");
#endif
}

}  // namespace

BatchNorm2d::BatchNorm2d(int64_t num_features_, double eps_, double momentum_)
    : num_features(num_features_), eps(eps_), momentum(momentum_) {
  ENGINE_CHECK(num_features > 0, "BatchNorm2d: num_features must be positive, got ", num_features);
  ENGINE_CHECK(eps > 0.0, "BatchNorm2d: eps must be positive, got ", eps);
  ENGINE_CHECK(momentum >= 0.0 && momentum <= 1.0, "BatchNorm2d: momentum must be in [0, 1], got ", momentum);
  weight = register_parameter("weight", Tensor::ones({num_features}));
  bias = register_parameter("bias", Tensor::zeros({num_features}));
  running_mean = register_buffer("running_mean", Tensor::zeros({num_features}));
  running_var = register_buffer("running_var", Tensor::ones({num_features}));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::I64));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  // As PyTorch: the counter goes up before the op, in training mode only.
  if (is_training()) increment_counter(num_batches_tracked);
  return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}

}  // namespace engine
