// linear (y = x W^T + b) forward and forward + backward, at the shapes of the
// assignment's Part 2 (tiny: batch 128, in 10 or 1 features) and a larger
// layer where the GEMM dominates. GFLOP/s counts the matrix products:
// forward 2 N in out, backward two more products of the same size.
//   ./engine_bench --benchmark_filter=Linear --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include "core/autograd.h"
#include "core/ops.h"

namespace engine {
namespace {

// Args: N (batch), in_features, out_features.
void BM_LinearForward(benchmark::State& state) {
  autograd::NoGradGuard no_grad;
  const int64_t batch = state.range(0), in = state.range(1), out = state.range(2);
  Tensor x = Tensor::full({batch, in}, 0.5f), w = Tensor::full({out, in}, 0.25f), b = Tensor::full({out}, 0.1f);
  for (auto _ : state) benchmark::DoNotOptimize(linear(x, w, b).raw_data());
  state.counters["GFLOP/s"] =
      benchmark::Counter(2e-9 * batch * in * out * state.iterations(), benchmark::Counter::kIsRate);
}

// Forward, then backward to x, weight and bias (the autograd tape included).
void BM_LinearForwardBackward(benchmark::State& state) {
  const int64_t batch = state.range(0), in = state.range(1), out = state.range(2);
  Tensor x = Tensor::full({batch, in}, 0.5f), w = Tensor::full({out, in}, 0.25f), b = Tensor::full({out}, 0.1f);
  x.set_requires_grad();
  w.set_requires_grad();
  b.set_requires_grad();
  const Tensor grad_y = Tensor::full({batch, out}, 1.0f);
  for (auto _ : state) {
    autograd::backward(linear(x, w, b), grad_y);
    x.zero_grad();
    w.zero_grad();
    b.zero_grad();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(6e-9 * batch * in * out * state.iterations(), benchmark::Counter::kIsRate);
}

// The shapes: Part 2's embeddings (class one-hot 10 -> D, scalar t -> D for
// D = 64 and 128) and a large layer.
void linear_shapes(benchmark::internal::Benchmark* bench) {
  bench->ArgNames({"N", "in", "out"});
  bench->Args({128, 10, 128})->Args({128, 10, 64})->Args({128, 1, 128})->Args({128, 1, 64});
  bench->Args({128, 128, 128})->Args({128, 256, 256});  // FCBlock's second Linear (D -> D), D = 64 / 128 x 2
  bench->Args({256, 1024, 1024});
  bench->Unit(benchmark::kMicrosecond)->UseRealTime();
}
BENCHMARK(BM_LinearForward)->Apply(linear_shapes);
BENCHMARK(BM_LinearForwardBackward)->Apply(linear_shapes);

}  // namespace
}  // namespace engine
