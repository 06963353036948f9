// BatchNorm2d, GELU, avg_pool2d and concat at the assignment's shapes
// (batch 128, D = 64 channels, 28x28; the 7x7 pool on [128, 2D, 7, 7]; the
// UNet's skip join of two [128, 64, 28, 28]). All memory-bound, so the
// counter is an effective bandwidth: GB/s of the nominal traffic, each input
// read once and each output written once. Where an implementation makes more
// passes (BN reads x three times forward), this stays the same yardstick, so
// CPU and CUDA numbers and later fused kernels compare directly.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/batchnorm.h"

namespace engine {
namespace {

const Shape kActivation{128, 64, 28, 28};

// Values uniform in [lo, hi): realistic inputs (GELU's cost does not depend
// on them, but BN's statistics should not be degenerate).
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(static_cast<std::size_t>(shape_numel(shape)));
  for (float& v : values) v = dist(gen);
  return Tensor::from_vector(values, shape);
}

benchmark::Counter bytes_per_second(double bytes_per_iteration, benchmark::State& state) {
  return benchmark::Counter(bytes_per_iteration * static_cast<double>(state.iterations()),
                            benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// Training-mode forward + backward through autograd, as in a training step.
// Nominal traffic: forward reads x, writes y; backward reads x and dy,
// writes dx: 5 activation-sized arrays. (This implementation makes 3 passes
// over x forward and 3 over x, dy backward.)
void BM_BatchNorm2dTrainForwardBackward(benchmark::State& state) {
  Tensor x = random_tensor(kActivation, 1, -2.0f, 2.0f);
  Tensor weight = Tensor::ones({64}), bias = Tensor::zeros({64});
  Tensor running_mean = Tensor::zeros({64}), running_var = Tensor::ones({64});
  x.set_requires_grad();
  weight.set_requires_grad();
  bias.set_requires_grad();
  Tensor grad_y = random_tensor(kActivation, 2);
  for (auto _ : state) {
    Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, /*training=*/true);
    autograd::backward(y, grad_y);
    x.zero_grad();
    weight.zero_grad();
    bias.zero_grad();
  }
  state.counters["GB/s"] = bytes_per_second(5.0 * x.nbytes(), state);
}
BENCHMARK(BM_BatchNorm2dTrainForwardBackward)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BatchNorm2dTrainForward(benchmark::State& state) {
  autograd::NoGradGuard no_grad;
  Tensor x = random_tensor(kActivation, 1, -2.0f, 2.0f);
  Tensor weight = Tensor::ones({64}), bias = Tensor::zeros({64});
  Tensor running_mean = Tensor::zeros({64}), running_var = Tensor::ones({64});
  for (auto _ : state)
    benchmark::DoNotOptimize(batch_norm2d(x, weight, bias, running_mean, running_var, true).raw_data());
  state.counters["GB/s"] = bytes_per_second(2.0 * x.nbytes(), state);  // read x, write y
}
BENCHMARK(BM_BatchNorm2dTrainForward)->Unit(benchmark::kMillisecond)->UseRealTime();

// The kernels alone, on buffers allocated once (no autograd, no allocation):
// the current implementation beside the reference one it replaced
// (kernels/cpu/batchnorm.h), so that one run compares them under the same
// machine load. Shape [128, 64, 28, 28].
using BatchStatsKernel = void (*)(const float*, int64_t, int64_t, int64_t, double, double, float*, float*, float*,
                                  float*);
using BatchNormBackwardKernel = void (*)(const float*, const float*, const float*, const float*, const float*, bool,
                                         float*, float*, float*, int64_t, int64_t, int64_t);

// Training statistics (mean, inv_std, running statistics): reads x.
void BM_BatchNorm2dStatsKernel(benchmark::State& state, BatchStatsKernel stats) {
  const Tensor x = random_tensor(kActivation, 1, -2.0f, 2.0f);
  std::vector<float> mean(64), inv_std(64), running_mean(64, 0.0f), running_var(64, 1.0f);
  for (auto _ : state) {
    stats(x.data<float>(), 128, 64, 28 * 28, 0.1, 1e-5, mean.data(), inv_std.data(), running_mean.data(),
          running_var.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = bytes_per_second(1.0 * x.nbytes(), state);
}
BENCHMARK_CAPTURE(BM_BatchNorm2dStatsKernel, fast, &cpu::batchnorm_batch_stats)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_BatchNorm2dStatsKernel, reference, &cpu::batchnorm_batch_stats_reference)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Training-mode backward, all three gradients: reads x and grad_y, grad_x += .
void BM_BatchNorm2dBackwardKernel(benchmark::State& state, BatchNormBackwardKernel backward) {
  const Tensor x = random_tensor(kActivation, 1, -2.0f, 2.0f), grad_y = random_tensor(kActivation, 2);
  Tensor grad_x = Tensor::zeros(kActivation);
  std::vector<float> mean(64, 0.0f), inv_std(64, 0.8f), weight(64, 1.0f), grad_weight(64), grad_bias(64);
  for (auto _ : state) {
    backward(x.data<float>(), grad_y.data<float>(), mean.data(), inv_std.data(), weight.data(), true,
             grad_x.data<float>(), grad_weight.data(), grad_bias.data(), 128, 64, 28 * 28);
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = bytes_per_second(3.0 * x.nbytes(), state);  // read x, grad_y; write grad_x
}
BENCHMARK_CAPTURE(BM_BatchNorm2dBackwardKernel, fast, &cpu::batchnorm_backward)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_BatchNorm2dBackwardKernel, reference, &cpu::batchnorm_backward_reference)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_GeluForward(benchmark::State& state) {
  autograd::NoGradGuard no_grad;
  Tensor x = random_tensor(kActivation, 3, -4.0f, 4.0f);
  for (auto _ : state) benchmark::DoNotOptimize(gelu(x).raw_data());
  state.counters["GB/s"] = bytes_per_second(2.0 * x.nbytes(), state);  // read x, write y
}
BENCHMARK(BM_GeluForward)->Unit(benchmark::kMillisecond)->UseRealTime();

// The kernels alone, the vectorised ones (fast_math.h) beside the erff/expf
// reference ones: forward y = gelu(x) (read x, write y) and backward
// grad_x += grad_y * gelu'(x) (read x and grad_y, write grad_x; the += also
// reads it).
using GeluForwardKernel = void (*)(const float*, float*, int64_t);
using GeluBackwardKernel = void (*)(const float*, const float*, float*, int64_t);

void BM_GeluForwardKernel(benchmark::State& state, GeluForwardKernel forward) {
  const Tensor x = random_tensor(kActivation, 3, -4.0f, 4.0f);
  Tensor y = Tensor::zeros(kActivation);
  for (auto _ : state) {
    forward(x.data<float>(), y.data<float>(), x.numel());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = bytes_per_second(2.0 * x.nbytes(), state);
}
BENCHMARK_CAPTURE(BM_GeluForwardKernel, fast, &cpu::gelu_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GeluForwardKernel, reference, &cpu::gelu_forward_reference)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_GeluBackward(benchmark::State& state, GeluBackwardKernel backward) {
  const Tensor x = random_tensor(kActivation, 4, -4.0f, 4.0f);
  const Tensor grad_y = random_tensor(kActivation, 5);
  Tensor grad_x = Tensor::zeros(kActivation);
  for (auto _ : state) {
    backward(x.data<float>(), grad_y.data<float>(), grad_x.data<float>(), x.numel());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = bytes_per_second(3.0 * x.nbytes(), state);
}
BENCHMARK_CAPTURE(BM_GeluBackward, fast, &cpu::gelu_backward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GeluBackward, reference, &cpu::gelu_backward_reference)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// nn.AvgPool2d(7) on [128, 128, 7, 7] -> [128, 128, 1, 1], forward + backward.
void BM_AvgPool2d7x7ForwardBackward(benchmark::State& state) {
  Tensor x = random_tensor({128, 128, 7, 7}, 6);
  x.set_requires_grad();
  Tensor grad_y = random_tensor({128, 128, 1, 1}, 7);
  for (auto _ : state) {
    Tensor y = avg_pool2d(x, 7);
    autograd::backward(y, grad_y);
    x.zero_grad();
  }
  state.counters["GB/s"] = bytes_per_second(2.0 * x.nbytes(), state);  // read x, write grad_x
}
BENCHMARK(BM_AvgPool2d7x7ForwardBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_AvgPool2d7x7Forward(benchmark::State& state) {
  autograd::NoGradGuard no_grad;
  Tensor x = random_tensor({128, 128, 7, 7}, 6);
  for (auto _ : state) benchmark::DoNotOptimize(avg_pool2d(x, 7).raw_data());
  state.counters["GB/s"] = bytes_per_second(1.0 * x.nbytes(), state);
}
BENCHMARK(BM_AvgPool2d7x7Forward)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The UNet's skip join: concat({skip, up}, 1) of two [128, 64, 28, 28].
void BM_ConcatChannels(benchmark::State& state) {
  autograd::NoGradGuard no_grad;
  Tensor skip = Tensor::full(kActivation, 1.0f), up = Tensor::full(kActivation, 2.0f);
  for (auto _ : state) benchmark::DoNotOptimize(concat({skip, up}, 1).raw_data());
  state.counters["GB/s"] = bytes_per_second(4.0 * skip.nbytes(), state);  // read both, write the two halves
}
BENCHMARK(BM_ConcatChannels)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ConcatChannelsForwardBackward(benchmark::State& state) {
  Tensor skip = Tensor::full(kActivation, 1.0f), up = Tensor::full(kActivation, 2.0f);
  skip.set_requires_grad();
  up.set_requires_grad();
  Tensor grad_y = Tensor::full({128, 128, 28, 28}, 0.5f);
  for (auto _ : state) {
    autograd::backward(concat({skip, up}, 1), grad_y);
    skip.zero_grad();
    up.zero_grad();
  }
  state.counters["GB/s"] = bytes_per_second(8.0 * skip.nbytes(), state);  // forward 4; backward reads 2 halves, writes 2
}
BENCHMARK(BM_ConcatChannelsForwardBackward)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace engine
