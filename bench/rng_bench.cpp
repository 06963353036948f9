// The random fills at the shapes DDPM uses: the noise of one MNIST batch
// [128, 1, 28, 28] (100k samples) and a 4M-sample tensor [1 << 22]; both are
// above the size at which a fill goes parallel (kMinBlocksForThreads in
// core/rng.cpp). Counters: samples per second and bytes written per second.
#include <benchmark/benchmark.h>

#include "core/rng.h"

namespace engine {
namespace {

const Shape kShapes[] = {{128, 1, 28, 28}, {1 << 22}};

// samples/s, and bytes written per second (4 per sample) under the name
// GB/s as the other benches print it (SI prefixes: "1.2G/s" is 1.2 GB/s).
void set_counters(benchmark::State& state, const Tensor& t) {
  const double samples = static_cast<double>(t.numel()) * static_cast<double>(state.iterations());
  state.counters["samples/s"] = benchmark::Counter(samples, benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.counters["GB/s"] = benchmark::Counter(4.0 * samples, benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_UniformFill(benchmark::State& state) {
  Tensor t = Tensor::empty(kShapes[state.range(0)]);
  Generator gen(1);
  for (auto _ : state) {
    uniform_(t, -1.0f, 1.0f, gen);
    benchmark::DoNotOptimize(t.raw_data());
  }
  set_counters(state, t);
  state.SetLabel(shape_str(t.shape()));
}
BENCHMARK(BM_UniformFill)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_NormalFill(benchmark::State& state) {
  Tensor t = Tensor::empty(kShapes[state.range(0)]);
  Generator gen(1);
  for (auto _ : state) {
    normal_(t, 0.0f, 1.0f, gen);
    benchmark::DoNotOptimize(t.raw_data());
  }
  set_counters(state, t);
  state.SetLabel(shape_str(t.shape()));
}
BENCHMARK(BM_NormalFill)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace engine
