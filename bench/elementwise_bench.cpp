// Elementwise ops and reductions at the assignment's activation sizes
// (batch 128, D=64 channels, 28x28): memory-bound, so the counter is GB/s.
#include <benchmark/benchmark.h>

#include "core/autograd.h"
#include "core/ops.h"

namespace engine {
namespace {

const Shape kActivation{128, 64, 28, 28};

void BM_AddSameShape(benchmark::State& state) {
  autograd::NoGradGuard no_grad;
  Tensor a = Tensor::full(kActivation, 1.0f), b = Tensor::full(kActivation, 2.0f);
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b).raw_data());
  state.counters["GB/s"] = benchmark::Counter(3.0 * a.nbytes() * state.iterations(), benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_AddSameShape)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MulPerChannel(benchmark::State& state) {
  autograd::NoGradGuard no_grad;
  Tensor a = Tensor::full(kActivation, 1.0f), t = Tensor::full({128, 64, 1, 1}, 2.0f);
  for (auto _ : state) benchmark::DoNotOptimize(mul(t, a).raw_data());
  state.counters["GB/s"] = benchmark::Counter(2.0 * a.nbytes() * state.iterations(), benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_MulPerChannel)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MseLossForwardBackward(benchmark::State& state) {
  Tensor p = Tensor::full({256, 1, 28, 28}, 1.0f), t = Tensor::full({256, 1, 28, 28}, 0.5f);
  p.set_requires_grad();
  for (auto _ : state) {
    mse_loss(p, t).backward();
    p.zero_grad();
  }
  state.counters["GB/s"] = benchmark::Counter(5.0 * p.nbytes() * state.iterations(), benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_MseLossForwardBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Sum(benchmark::State& state) {
  autograd::NoGradGuard no_grad;
  Tensor a = Tensor::full(kActivation, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(sum(a).raw_data());
  state.counters["GB/s"] = benchmark::Counter(1.0 * a.nbytes() * state.iterations(), benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Sum)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace engine
