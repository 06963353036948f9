// The CUDA backend's own kernels (everything but conv, linear and GEMM, which
// bench/cuda_conv_bench.cpp and friends measure) at the assignment's shapes:
//   D=64:  activations [128, 64, 28, 28]   (time-/class-conditioned UNet, batch 128)
//   D=128: activations [256, 128, 28, 28]  (denoiser UNet, batch 256)
// Each benchmark calls the kernel function directly on device tensors, runs
// it 3 times to warm up (caches, allocator, clocks), then times every
// iteration with CUDA events on the engine's stream (manual time: the
// reported time is the GPU's, not the host's). Counters: GB/s = bytes the
// kernel must move (each input read once, each output written once, an
// accumulated output read and written) / GPU time. Compare with the card's
// memory bandwidth (H200: ~4.8 TB/s; a memory-bound kernel at 70% or more of
// it is doing well).
//
//   ./engine_bench --benchmark_filter=Cuda --benchmark_min_time=0.1s
// Without a GPU every benchmark reports the error "no CUDA device" and is skipped.
#ifdef ENGINE_WITH_CUDA
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <functional>

#include "core/rng.h"
#include "kernels/common/adam_math.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/adam.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/concat.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/pool.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/rng.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace engine {
namespace {

const Device kCuda = Device::cuda(0);

// state.range(0) = batch, state.range(1) = channels (D).
void assignment_shapes(benchmark::internal::Benchmark* b) {
  b->Args({128, 64})->Args({256, 128})->UseManualTime()->Unit(benchmark::kMicrosecond);
}

Shape activation_shape(const benchmark::State& state) { return {state.range(0), state.range(1), 28, 28}; }

// Times `launch` with CUDA events; `bytes` moved per launch gives GB/s.
void time_on_gpu(benchmark::State& state, const std::function<void()>& launch, double bytes) {
  cudaStream_t stream = cuda::current_stream();
  for (int i = 0; i < 3; ++i) launch();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  double total_seconds = 0.0;
  for (auto _ : state) {
    cudaEventRecord(start, stream);
    launch();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms * 1e-3);
    total_seconds += ms * 1e-3;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (total_seconds > 0.0) state.counters["GB/s"] = bytes * static_cast<double>(state.iterations()) / total_seconds / 1e9;
}

#define ENGINE_REQUIRE_GPU(state)                   \
  if (!cuda_available()) {                          \
    (state).SkipWithError("no CUDA device");        \
    return;                                         \
  }

Tensor random_on_gpu(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, DType::F32, kCuda);
  uniform_(t, lo, hi, gen);
  return t;
}

// --- Elementwise -------------------------------------------------------------------

void BM_CudaAdd(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const Tensor a = random_on_gpu(activation_shape(state), 1), b = random_on_gpu(activation_shape(state), 2);
  Tensor out = Tensor::empty_like(a);
  const int64_t n = a.numel();
  const cuda::BroadcastOperand full{n, 1};
  time_on_gpu(state, [&] { cuda::add_forward(a.data<float>(), full, b.data<float>(), full, out.data<float>(), 1, n); },
              3.0 * a.nbytes());
}
BENCHMARK(BM_CudaAdd)->Apply(assignment_shapes);

void BM_CudaMulPerChannel(benchmark::State& state) {  // x * t, t [N, C, 1, 1]: the UNet's conditioning
  ENGINE_REQUIRE_GPU(state);
  const Shape shape = activation_shape(state);
  const Tensor x = random_on_gpu(shape, 1), t = random_on_gpu({shape[0], shape[1], 1, 1}, 2);
  Tensor out = Tensor::empty_like(x);
  const int64_t rows = shape[0] * shape[1], cols = 28 * 28;
  time_on_gpu(state,
              [&] {
                cuda::mul_forward(x.data<float>(), {cols, 1}, t.data<float>(), {1, 0}, out.data<float>(), rows, cols);
              },
              2.0 * x.nbytes());
}
BENCHMARK(BM_CudaMulPerChannel)->Apply(assignment_shapes);

void BM_CudaBroadcastBackwardPerChannel(benchmark::State& state) {  // grad of t in x * t: a per-row reduction
  ENGINE_REQUIRE_GPU(state);
  const Shape shape = activation_shape(state);
  const Tensor gy = random_on_gpu(shape, 1), x = random_on_gpu(shape, 2);
  Tensor grad_t = Tensor::zeros({shape[0], shape[1], 1, 1}, DType::F32, kCuda);
  const int64_t rows = shape[0] * shape[1], cols = 28 * 28;
  time_on_gpu(state,
              [&] {
                cuda::broadcast_backward(gy.data<float>(), x.data<float>(), {cols, 1}, 1.0f, grad_t.data<float>(),
                                         {1, 0}, rows, cols);
              },
              2.0 * gy.nbytes());
}
BENCHMARK(BM_CudaBroadcastBackwardPerChannel)->Apply(assignment_shapes);

void BM_CudaBroadcastBackwardScalar(benchmark::State& state) {  // grad of a scalar factor: a full reduction
  ENGINE_REQUIRE_GPU(state);
  const Tensor gy = random_on_gpu(activation_shape(state), 1);
  Tensor grad = Tensor::zeros({}, DType::F32, kCuda);
  const int64_t n = gy.numel();
  time_on_gpu(state,
              [&] { cuda::broadcast_backward(gy.data<float>(), nullptr, {0, 0}, 1.0f, grad.data<float>(), {0, 0}, 1, n); },
              1.0 * gy.nbytes());
}
BENCHMARK(BM_CudaBroadcastBackwardScalar)->Apply(assignment_shapes);

void BM_CudaAffine(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const Tensor a = random_on_gpu(activation_shape(state), 1);
  Tensor out = Tensor::empty_like(a);
  time_on_gpu(state, [&] { cuda::affine_forward(a.data<float>(), 0.5f, 1.0f, out.data<float>(), a.numel()); },
              2.0 * a.nbytes());
}
BENCHMARK(BM_CudaAffine)->Apply(assignment_shapes);

void BM_CudaAccumulate(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const Tensor src = random_on_gpu(activation_shape(state), 1);
  Tensor dst = random_on_gpu(activation_shape(state), 2);
  time_on_gpu(state, [&] { cuda::accumulate(dst.data<float>(), src.data<float>(), src.numel()); }, 3.0 * src.nbytes());
}
BENCHMARK(BM_CudaAccumulate)->Apply(assignment_shapes);

void BM_CudaFill(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  Tensor out = Tensor::empty(activation_shape(state), DType::F32, kCuda);
  time_on_gpu(state, [&] { cuda::fill(out.data<float>(), 1.0f, out.numel()); }, 1.0 * out.nbytes());
}
BENCHMARK(BM_CudaFill)->Apply(assignment_shapes);

// --- Reductions and loss ---------------------------------------------------------------

void BM_CudaSum(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const Tensor a = random_on_gpu(activation_shape(state), 1);
  Tensor out = Tensor::empty({}, DType::F32, kCuda);
  time_on_gpu(state, [&] { cuda::sum_forward(a.data<float>(), out.data<float>(), a.numel()); }, 1.0 * a.nbytes());
}
BENCHMARK(BM_CudaSum)->Apply(assignment_shapes);

// The loss sees the network's output, [N, 1, 28, 28].
void BM_CudaMseForward(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const Shape shape{state.range(0), 1, 28, 28};
  const Tensor p = random_on_gpu(shape, 1), t = random_on_gpu(shape, 2);
  Tensor out = Tensor::empty({}, DType::F32, kCuda);
  time_on_gpu(state, [&] { cuda::mse_forward(p.data<float>(), t.data<float>(), out.data<float>(), p.numel()); },
              2.0 * p.nbytes());
}
BENCHMARK(BM_CudaMseForward)->Apply(assignment_shapes);

void BM_CudaMseBackward(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const Shape shape{state.range(0), 1, 28, 28};
  const Tensor p = random_on_gpu(shape, 1), t = random_on_gpu(shape, 2), g = Tensor::ones({}, kCuda);
  Tensor grad = Tensor::zeros(shape, DType::F32, kCuda);
  time_on_gpu(state,
              [&] {
                cuda::mse_backward(p.data<float>(), t.data<float>(), g.data<float>(), grad.data<float>(), nullptr,
                                   p.numel());
              },
              4.0 * p.nbytes());
}
BENCHMARK(BM_CudaMseBackward)->Apply(assignment_shapes);

// --- GELU ----------------------------------------------------------------------------------

void BM_CudaGeluForward(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const Tensor x = random_on_gpu(activation_shape(state), 1, -3.0f, 3.0f);
  Tensor y = Tensor::empty_like(x);
  time_on_gpu(state, [&] { cuda::gelu_forward(x.data<float>(), y.data<float>(), x.numel()); }, 2.0 * x.nbytes());
}
BENCHMARK(BM_CudaGeluForward)->Apply(assignment_shapes);

void BM_CudaGeluBackward(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const Tensor x = random_on_gpu(activation_shape(state), 1, -3.0f, 3.0f), gy = random_on_gpu(activation_shape(state), 2);
  Tensor gx = Tensor::zeros_like(x);
  time_on_gpu(state, [&] { cuda::gelu_backward(x.data<float>(), gy.data<float>(), gx.data<float>(), x.numel()); },
              4.0 * x.nbytes());
}
BENCHMARK(BM_CudaGeluBackward)->Apply(assignment_shapes);

// --- BatchNorm (and the fused BN + GELU) -----------------------------------------------------

struct BatchNormSetup {
  Tensor x, gy, weight, bias, mean, inv_std, running_mean, running_var, y, gx, gw, gb;
  int64_t batch, channels, spatial = 28 * 28;
  explicit BatchNormSetup(const benchmark::State& state)
      : x(random_on_gpu(activation_shape(state), 1)), gy(random_on_gpu(activation_shape(state), 2)),
        weight(Tensor::ones({state.range(1)}, kCuda)), bias(Tensor::zeros({state.range(1)}, DType::F32, kCuda)),
        mean(Tensor::zeros({state.range(1)}, DType::F32, kCuda)), inv_std(Tensor::ones({state.range(1)}, kCuda)),
        running_mean(Tensor::zeros({state.range(1)}, DType::F32, kCuda)),
        running_var(Tensor::ones({state.range(1)}, kCuda)), y(Tensor::empty_like(x)), gx(Tensor::zeros_like(x)),
        gw(Tensor::zeros_like(weight)), gb(Tensor::zeros_like(weight)), batch(state.range(0)),
        channels(state.range(1)) {}
};

void BM_CudaBatchNormStats(benchmark::State& state) {  // two passes over x
  ENGINE_REQUIRE_GPU(state);
  BatchNormSetup s(state);
  time_on_gpu(state,
              [&] {
                cuda::batchnorm_batch_stats(s.x.data<float>(), s.batch, s.channels, s.spatial, 0.1, 1e-5,
                                            s.mean.data<float>(), s.inv_std.data<float>(),
                                            s.running_mean.data<float>(), s.running_var.data<float>());
              },
              2.0 * s.x.nbytes());
}
BENCHMARK(BM_CudaBatchNormStats)->Apply(assignment_shapes);

void BM_CudaBatchNormApply(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  BatchNormSetup s(state);
  time_on_gpu(state,
              [&] {
                cuda::batchnorm_apply(s.x.data<float>(), s.mean.data<float>(), s.inv_std.data<float>(),
                                      s.weight.data<float>(), s.bias.data<float>(), s.y.data<float>(), s.batch,
                                      s.channels, s.spatial);
              },
              2.0 * s.x.nbytes());
}
BENCHMARK(BM_CudaBatchNormApply)->Apply(assignment_shapes);

void BM_CudaBatchNormBackward(benchmark::State& state) {  // sums pass (x, gy) + grad_x pass (x, gy, gx r/w)
  ENGINE_REQUIRE_GPU(state);
  BatchNormSetup s(state);
  time_on_gpu(state,
              [&] {
                cuda::batchnorm_backward(s.x.data<float>(), s.gy.data<float>(), s.mean.data<float>(),
                                         s.inv_std.data<float>(), s.weight.data<float>(), true, s.gx.data<float>(),
                                         s.gw.data<float>(), s.gb.data<float>(), s.batch, s.channels, s.spatial);
              },
              6.0 * s.x.nbytes());
}
BENCHMARK(BM_CudaBatchNormBackward)->Apply(assignment_shapes);

void BM_CudaBatchNormThenGeluUnfused(benchmark::State& state) {  // the reference: two kernels, z in memory
  ENGINE_REQUIRE_GPU(state);
  BatchNormSetup s(state);
  Tensor z = Tensor::empty_like(s.x);
  time_on_gpu(state,
              [&] {
                cuda::batchnorm_apply(s.x.data<float>(), s.mean.data<float>(), s.inv_std.data<float>(),
                                      s.weight.data<float>(), s.bias.data<float>(), z.data<float>(), s.batch,
                                      s.channels, s.spatial);
                cuda::gelu_forward(z.data<float>(), s.y.data<float>(), z.numel());
              },
              2.0 * s.x.nbytes());  // the useful traffic; the unfused pair moves twice as much
}
BENCHMARK(BM_CudaBatchNormThenGeluUnfused)->Apply(assignment_shapes);

void BM_CudaBatchNormGeluFused(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  BatchNormSetup s(state);
  time_on_gpu(state,
              [&] {
                cuda::batchnorm_gelu_apply(s.x.data<float>(), s.mean.data<float>(), s.inv_std.data<float>(),
                                           s.weight.data<float>(), s.bias.data<float>(), s.y.data<float>(), s.batch,
                                           s.channels, s.spatial);
              },
              2.0 * s.x.nbytes());
}
BENCHMARK(BM_CudaBatchNormGeluFused)->Apply(assignment_shapes);

void BM_CudaBatchNormGeluFusedBackward(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  BatchNormSetup s(state);
  time_on_gpu(state,
              [&] {
                cuda::batchnorm_gelu_backward(s.x.data<float>(), s.gy.data<float>(), s.mean.data<float>(),
                                              s.inv_std.data<float>(), s.weight.data<float>(), s.bias.data<float>(),
                                              true, s.gx.data<float>(), s.gw.data<float>(), s.gb.data<float>(),
                                              s.batch, s.channels, s.spatial);
              },
              6.0 * s.x.nbytes());
}
BENCHMARK(BM_CudaBatchNormGeluFusedBackward)->Apply(assignment_shapes);

// --- Pooling and concat --------------------------------------------------------------------

void BM_CudaAvgPool7x7(benchmark::State& state) {  // the UNet's [N, 2D, 7, 7] -> [N, 2D, 1, 1]
  ENGINE_REQUIRE_GPU(state);
  const int64_t planes = state.range(0) * 2 * state.range(1);
  const Tensor x = random_on_gpu({planes, 7, 7}, 1);
  Tensor y = Tensor::empty({planes, 1, 1}, DType::F32, kCuda);
  time_on_gpu(state, [&] { cuda::avg_pool2d_forward(x.data<float>(), y.data<float>(), planes, 7, 7, 7, 7, 1, 1); },
              1.0 * x.nbytes() + y.nbytes());
}
BENCHMARK(BM_CudaAvgPool7x7)->Apply(assignment_shapes);

void BM_CudaAvgPool7x7Backward(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const int64_t planes = state.range(0) * 2 * state.range(1);
  const Tensor gy = random_on_gpu({planes, 1, 1}, 1);
  Tensor gx = Tensor::zeros({planes, 7, 7}, DType::F32, kCuda);
  time_on_gpu(state, [&] { cuda::avg_pool2d_backward(gy.data<float>(), gx.data<float>(), planes, 7, 7, 7, 7, 1, 1); },
              2.0 * gx.nbytes() + gy.nbytes());
}
BENCHMARK(BM_CudaAvgPool7x7Backward)->Apply(assignment_shapes);

void BM_CudaConcatChannels(benchmark::State& state) {  // skip connection: [N, D, 28, 28] x 2 -> [N, 2D, 28, 28]
  ENGINE_REQUIRE_GPU(state);
  const Tensor a = random_on_gpu(activation_shape(state), 1), b = random_on_gpu(activation_shape(state), 2);
  Tensor out = Tensor::empty({state.range(0), 2 * state.range(1), 28, 28}, DType::F32, kCuda);
  const void* inputs[] = {a.raw_data(), b.raw_data()};
  const int64_t extents[] = {state.range(1), state.range(1)};
  time_on_gpu(state, [&] { cuda::concat_forward(inputs, extents, 2, out.raw_data(), state.range(0), 28 * 28, 4); },
              2.0 * out.nbytes());
}
BENCHMARK(BM_CudaConcatChannels)->Apply(assignment_shapes);

void BM_CudaConcatChannelsBackward(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  const Tensor gout = random_on_gpu({state.range(0), 2 * state.range(1), 28, 28}, 1);
  Tensor ga = Tensor::zeros(activation_shape(state), DType::F32, kCuda), gb = Tensor::zeros_like(ga);
  float* grads[] = {ga.data<float>(), gb.data<float>()};
  const int64_t extents[] = {state.range(1), state.range(1)};
  time_on_gpu(state, [&] { cuda::concat_backward(gout.data<float>(), extents, 2, grads, state.range(0), 28 * 28); },
              3.0 * gout.nbytes());
}
BENCHMARK(BM_CudaConcatChannelsBackward)->Apply(assignment_shapes);

// --- Adam: one launch over a UNet-sized parameter list ----------------------------------

void BM_CudaAdamMultiTensor(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  // The UNet's parameter tensors for hidden size D: per conv block a 3x3 D->D
  // weight and three [D] vectors (bias, BN weight, BN bias), 12 blocks.
  const int64_t d = state.range(1);
  std::vector<Tensor> tensors;  // param, grad, m, v for each parameter
  std::vector<cuda::AdamTensor> refs;
  for (int block = 0; block < 12; ++block)
    for (const Shape& shape : {Shape{d, d, 3, 3}, Shape{d}, Shape{d}, Shape{d}}) {
      for (int k = 0; k < 4; ++k) tensors.push_back(random_on_gpu(shape, 10 * block + k, -0.1f, 0.1f));
      const std::size_t base = tensors.size() - 4;
      refs.push_back({tensors[base].data<float>(), tensors[base + 1].data<float>(), tensors[base + 2].data<float>(),
                      tensors[base + 3].data<float>(), tensors[base].numel(), 0, 0});
    }
  const int64_t total_chunks = cuda::plan_adam_chunks(refs.data(), static_cast<int64_t>(refs.size()));
  AdamStepConstants c{0.9f, 0.1f, 0.999f, 0.001f, 1e-3f, 0.5f, 1e-8f, 0.0f};
  Tensor args = Tensor::empty({static_cast<int64_t>((refs.size() * sizeof(cuda::AdamTensor) + sizeof c) / 4 + 1)},
                              DType::F32, kCuda);
  const std::size_t ref_bytes = refs.size() * sizeof(cuda::AdamTensor);
  cuda::copy_host_to_device(args.raw_data(), refs.data(), ref_bytes, 0);
  cuda::copy_host_to_device(static_cast<char*>(args.raw_data()) + ref_bytes, &c, sizeof c, 0);
  double elements = 0.0;
  for (const cuda::AdamTensor& r : refs) elements += static_cast<double>(r.numel);
  const auto* base = static_cast<const char*>(args.raw_data());
  time_on_gpu(state,
              [&] {
                cuda::adam_step_multi_tensor(reinterpret_cast<const cuda::AdamTensor*>(base),
                                             static_cast<int64_t>(refs.size()),
                                             reinterpret_cast<const AdamStepConstants*>(base + ref_bytes),
                                             total_chunks);
              },
              elements * 28.0);  // read p, g, m, v; write p, m, v
  state.counters["params"] = elements;
}
BENCHMARK(BM_CudaAdamMultiTensor)->Apply(assignment_shapes);

// --- Philox fills ------------------------------------------------------------------------------

void BM_CudaNormalFill(benchmark::State& state) {  // the DDPM's noise: [N, 1, 28, 28]
  ENGINE_REQUIRE_GPU(state);
  Tensor out = Tensor::empty({state.range(0), 1, 28, 28}, DType::F32, kCuda);
  time_on_gpu(state, [&] { cuda::normal_fill(out.data<float>(), out.numel(), 42, 0, 0.0f, 1.0f); }, 1.0 * out.nbytes());
}
BENCHMARK(BM_CudaNormalFill)->Apply(assignment_shapes);

void BM_CudaUniformFillActivation(benchmark::State& state) {
  ENGINE_REQUIRE_GPU(state);
  Tensor out = Tensor::empty(activation_shape(state), DType::F32, kCuda);
  time_on_gpu(state, [&] { cuda::uniform_fill(out.data<float>(), out.numel(), 42, 0, 0.0f, 1.0f); }, 1.0 * out.nbytes());
}
BENCHMARK(BM_CudaUniformFillActivation)->Apply(assignment_shapes);

void BM_CudaRandintTimesteps(benchmark::State& state) {  // one timestep per sample
  ENGINE_REQUIRE_GPU(state);
  Tensor out = Tensor::empty({state.range(0)}, DType::I64, kCuda);
  time_on_gpu(state, [&] { cuda::randint_fill(out.data<int64_t>(), out.numel(), 42, 0, 0, 300); }, 1.0 * out.nbytes());
}
BENCHMARK(BM_CudaRandintTimesteps)->Apply(assignment_shapes);

}  // namespace
}  // namespace engine
#endif  // ENGINE_WITH_CUDA
