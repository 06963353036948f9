// The blocked GEMM (kernels/cpu/gemm.cpp) in GFLOP/s = 2 M N K / time:
// square sizes, the shapes conv2d lowers to (im2col: M = C_out,
// N = H W = 28 * 28, K = C_in * 3 * 3), all four transpose combinations at
// 1024 and the reference triple loop for comparison.
//   ./engine_bench --benchmark_filter=Gemm --benchmark_min_time=0.2
// For reference, OpenBLAS SGEMM reaches about 300 GFLOP/s on this machine's
// two cores (docs/gemm.md has the numbers).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace engine {
namespace {

std::vector<float> random_values(int64_t count, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& v : values) v = dist(gen);
  return values;
}

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                        float, float*, int64_t);

// C[M, N] = op(A) op(B) with dense operands (leading dimension = width).
void run_gemm(benchmark::State& state, GemmFn fn, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  const std::vector<float> a = random_values(M * K, 1), b = random_values(K * N, 2);
  std::vector<float> c(static_cast<std::size_t>(M * N), 0.0f);
  const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
  for (auto _ : state) {
    fn(trans_a, trans_b, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), N);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  // Counted in units of 1e9 flops, so the rate prints as GFLOP/s.
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * M * N * K * state.iterations(), benchmark::Counter::kIsRate);
}

// Square M = N = K = range(0), no transposes.
void BM_GemmSquare(benchmark::State& state) {
  const int64_t n = state.range(0);
  run_gemm(state, cpu::gemm, false, false, n, n, n);
}
BENCHMARK(BM_GemmSquare)->Arg(256)->Arg(512)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

// All four transpose combinations at 1024: packing absorbs the layout.
void BM_GemmTransposes1024(benchmark::State& state) {
  run_gemm(state, cpu::gemm, state.range(0) != 0, state.range(1) != 0, 1024, 1024, 1024);
}
BENCHMARK(BM_GemmTransposes1024)
    ->ArgNames({"trans_a", "trans_b"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// conv2d on 28 x 28 maps as a GEMM per image: weight [C_out, C_in*9] x
// columns [C_in*9, 784]. Args: M (C_out), N (H W), K (C_in * 9).
void BM_GemmConvShape(benchmark::State& state) {
  run_gemm(state, cpu::gemm, false, false, state.range(0), state.range(1), state.range(2));
}
BENCHMARK(BM_GemmConvShape)
    ->ArgNames({"M", "N", "K"})
    ->Args({64, 784, 576})    // 64 -> 64 channels, 3x3
    ->Args({128, 784, 1152})  // 128 -> 128 channels, 3x3
    ->Args({64, 784, 9})      // 1 -> 64 channels, 3x3 (the first conv)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The weight gradient of the same conv, per image: grad_y [C_out, 784] x
// columns^T, columns stored [C_in*9, 784] (trans_b). Args: M (C_out),
// N (C_in * 9), K (H W).
void BM_GemmConvWeightGradShape(benchmark::State& state) {
  run_gemm(state, cpu::gemm, false, true, state.range(0), state.range(1), state.range(2));
}
BENCHMARK(BM_GemmConvWeightGradShape)
    ->ArgNames({"M", "N", "K"})
    ->Args({64, 576, 784})    // 64 -> 64 channels, 3x3, 28x28
    ->Args({128, 1152, 294})  // 128 -> 128 channels, 3x3, 7x7 (a group of 6 images)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The specification: the plain triple loop, for comparison.
void BM_GemmReference(benchmark::State& state) {
  const int64_t n = state.range(0);
  run_gemm(state, cpu::gemm_reference, false, false, n, n, n);
}
BENCHMARK(BM_GemmReference)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace engine
