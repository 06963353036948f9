// The Adam step: a pure streaming kernel (per element 16 bytes read: param,
// grad, m, v; 12 bytes written: param, m, v), so the counter is GB/s.
// 1.6M parameters: the size of the assignment's class-conditioned UNet.
#include <benchmark/benchmark.h>

#include "core/tensor.h"
#include "layers/optim.h"

namespace engine {
namespace {

constexpr int64_t kParameters = 1600000;

void BM_AdamStep(benchmark::State& state) {
  Tensor p = Tensor::full({kParameters}, 0.5f);
  p.set_requires_grad();
  p.set_grad(Tensor::full({kParameters}, 1e-3f));
  Adam adam({p}, 1e-3);
  adam.step();  // create the moments outside the timed loop
  for (auto _ : state) adam.step();
  state.counters["GB/s"] = benchmark::Counter(28.0 * kParameters * state.iterations(), benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_AdamStep)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The same parameter count split as in a small UNet: many small tensors
// (biases, BatchNorm parameters) beside a few large convolution weights.
void BM_AdamStepManyTensors(benchmark::State& state) {
  std::vector<Tensor> params;
  int64_t total = 0;
  while (total < kParameters) {
    for (int64_t numel : {int64_t{64 * 64 * 9}, int64_t{64}, int64_t{64}, int64_t{64}}) {
      Tensor p = Tensor::full({numel}, 0.5f);
      p.set_requires_grad();
      p.set_grad(Tensor::full({numel}, 1e-3f));
      params.push_back(p);
      total += numel;
    }
  }
  Adam adam(params, 1e-3);
  adam.step();
  for (auto _ : state) adam.step();
  state.counters["GB/s"] = benchmark::Counter(28.0 * static_cast<double>(total) * state.iterations(),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.counters["tensors"] = static_cast<double>(params.size());
}
BENCHMARK(BM_AdamStepManyTensors)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace engine
