// Checkpoint I/O: save and load of a state-dict-like set of tensors of about
// 30 MB (conv weights, biases, BatchNorm buffers with their int64 counters),
// the size of a larger UNet checkpoint. Counter: GB/s of tensor bytes.
// Save includes the fsync, so it measures the disk as much as the code.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "core/safetensors.h"

namespace engine {
namespace {

// 50 blocks of conv [128, 128, 3, 3] + bias + BatchNorm (weight, bias,
// running_mean, running_var, num_batches_tracked): 50 * 592 KB = 29.6 MB.
NamedTensors state_dict_like() {
  NamedTensors tensors;
  for (int block = 0; block < 50; ++block) {
    const std::string prefix = "blocks." + std::to_string(block) + ".";
    tensors.emplace_back(prefix + "conv.weight", Tensor::full({128, 128, 3, 3}, 0.01f * block));
    tensors.emplace_back(prefix + "conv.bias", Tensor::full({128}, 0.5f));
    tensors.emplace_back(prefix + "bn.weight", Tensor::ones({128}));
    tensors.emplace_back(prefix + "bn.bias", Tensor::zeros({128}));
    tensors.emplace_back(prefix + "bn.running_mean", Tensor::zeros({128}));
    tensors.emplace_back(prefix + "bn.running_var", Tensor::ones({128}));
    tensors.emplace_back(prefix + "bn.num_batches_tracked", Tensor::from_vector_i64({1000}, {}));
  }
  return tensors;
}

double total_bytes(const NamedTensors& tensors) {
  double bytes = 0;
  for (const auto& [name, tensor] : tensors) bytes += static_cast<double>(tensor.nbytes());
  return bytes;
}

std::string bench_path() { return "/tmp/engine_safetensors_bench_" + std::to_string(::getpid()) + ".safetensors"; }

void BM_SafetensorsSave(benchmark::State& state) {
  const NamedTensors tensors = state_dict_like();
  const std::string path = bench_path();
  for (auto _ : state) save_safetensors(path, tensors, {{"format", "pt"}});
  std::remove(path.c_str());
  state.counters["MB"] = total_bytes(tensors) / 1e6;
  state.counters["GB/s"] = benchmark::Counter(total_bytes(tensors) * static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_SafetensorsSave)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SafetensorsLoad(benchmark::State& state) {
  const NamedTensors tensors = state_dict_like();
  const std::string path = bench_path();
  save_safetensors(path, tensors);
  for (auto _ : state) benchmark::DoNotOptimize(load_safetensors(path).tensors.data());
  std::remove(path.c_str());
  state.counters["MB"] = total_bytes(tensors) / 1e6;
  state.counters["GB/s"] = benchmark::Counter(total_bytes(tensors) * static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_SafetensorsLoad)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace engine
