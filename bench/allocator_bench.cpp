// The CPU caching allocator (core/allocator.h) on the pattern of a training
// step: activations are allocated, written in full (Tensor::zeros) and freed,
// again and again. The last argument turns the cache off (cache:0) or on
// (cache:1), side by side in one run. Off, blocks go back to glibc, which
// returns large ones to the kernel (munmap, or trimming the heap), and the
// next allocation gets fresh pages, each of which faults on first touch and
// is cleared by the kernel; on, the same blocks come back from the cache, their
// pages still mapped.
//
// Arguments: channels:C live:L, i.e. L tensors of [128, C, 28, 28] floats:
//   channels:64  live:1   one 25.7 MB activation (D=64, batch 128)
//   channels:128 live:1   one 51.4 MB concat of a skip and an upsampled
//                         activation: above glibc's 32 MiB mmap ceiling
//   channels:64  live:8   a forward pass's working set: 8 activations alive at
//                         once, then all freed, as backward does
// glibc's malloc caches the first case by itself (after a large free it raises
// its mmap threshold, up to 32 MiB, and serves the next request from the heap);
// not the other two, which is what a training step looks like.
// Counter system_allocs/iter: the allocator's calls to aligned_alloc.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/allocator.h"
#include "core/tensor.h"

namespace engine {
namespace {

// Sets the cache on or off for one benchmark and restores the cap after.
class CacheSetting {
 public:
  explicit CacheSetting(bool caching) : saved_limit_(cpu_allocator_stats().cache_limit_bytes) {
    cpu_allocator_set_cache_limit(caching ? std::size_t{1} << 30 : 0);  // on: 1 GiB, above any working set here
  }
  ~CacheSetting() { cpu_allocator_set_cache_limit(saved_limit_); }

 private:
  std::size_t saved_limit_;
};

void BM_CpuAllocZerosFree(benchmark::State& state) {
  const Shape shape{128, state.range(0), 28, 28};
  const auto live = static_cast<std::size_t>(state.range(1));
  CacheSetting setting(state.range(2) != 0);
  const std::size_t system_before = cpu_allocator_stats().system_allocations;
  std::vector<Tensor> held;
  for (auto _ : state) {
    for (std::size_t i = 0; i < live; ++i) held.push_back(Tensor::zeros(shape));
    benchmark::DoNotOptimize(held.back().raw_data());
    benchmark::ClobberMemory();
    held.clear();
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["system_allocs/iter"] =
      static_cast<double>(cpu_allocator_stats().system_allocations - system_before) / iterations;
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(shape_numel(shape)) * sizeof(float) * static_cast<double>(live) * iterations,
                         benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_CpuAllocZerosFree)
    ->ArgNames({"channels", "live", "cache"})
    ->Args({64, 1, 0})
    ->Args({64, 1, 1})
    ->Args({128, 1, 0})
    ->Args({128, 1, 1})
    ->Args({64, 8, 0})
    ->Args({64, 8, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace engine
