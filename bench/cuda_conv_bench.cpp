// Our convolution and GEMM kernels against cuDNN and cuBLAS, side by side, at
// the assignment's shapes: the UNet's convolutions at batch 128 with D = 64
// and at batch 256 with D = 128 (28x28, 14x14, 7x7 and the 1x1 -> 7x7
// Unflatten), and its FCBlock GEMMs, plus two larger GEMMs for reference.
//
// Each benchmark runs one pass of one engine on device buffers (no autograd,
// no allocation in the timed loop): forward, backward-data (grad_x only) or
// backward-weight (grad_weight only). Timing: CUDA events around each
// iteration on the current stream, after three warm-up runs (which also let
// cuDNN choose and cache its algorithm and the allocator cache the
// workspace); reported as manual time. Counter TFLOP/s = 2 * multiply-adds /
// time (each pass of a convolution has the forward's multiply-adds).
// cuDNN runs with the engine's defaults: deterministic algorithms, TF32 off,
// heuristic choice, 256 MiB workspace cap; its algorithms are in the label.
//
//   ./bench/engine_bench --benchmark_filter='CudaConv|CudaGemm' --benchmark_min_time=0.05
//
// Without a GPU every benchmark reports "no CUDA device" and is skipped.
#include <benchmark/benchmark.h>

#include "core/device.h"

#ifdef ENGINE_WITH_CUDA

#include <cuda_runtime.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/common/conv_params.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/cublas.h"
#include "kernels/cuda/engine_select.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream.h"

namespace engine {
namespace {

enum Pass { kForward = 0, kBackwardData = 1, kBackwardWeight = 2 };
const char* const kPassNames[] = {"forward", "backward_data", "backward_weight"};

// Times `work` with CUDA events: manual time, and TFLOP/s from `flops` per run.
void time_on_gpu(benchmark::State& state, double flops, const std::function<void()>& work) {
  for (int i = 0; i < 3; ++i) work();  // warm-up: algorithm choice, allocator cache, clocks
  cudaStream_t stream = cuda::current_stream();
  cudaEvent_t start = nullptr, stop = nullptr;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  double total_seconds = 0.0;
  for (auto _ : state) {
    CUDA_CHECK(cudaEventRecord(start, stream));
    work();
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(ms * 1e-3);
    total_seconds += ms * 1e-3;
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  if (total_seconds > 0)
    state.counters["TFLOP/s"] = flops * static_cast<double>(state.iterations()) / total_seconds * 1e-12;
}

// Arguments: N, Cin, Cout, H (= W, the input size), k, s, p, transposed, pass, engine (0 cudnn, 1 implicit_gemm).
void BM_CudaConv(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device: GPU benchmarks skipped");
    return;
  }
  const int64_t batch = state.range(0), c_in = state.range(1), c_out = state.range(2), size = state.range(3);
  const int64_t kernel = state.range(4), stride = state.range(5), padding = state.range(6);
  const bool transposed = state.range(7) != 0;
  const Pass pass = static_cast<Pass>(state.range(8));
  const cuda::ConvEngine engine = state.range(9) == 0 ? cuda::ConvEngine::cudnn : cuda::ConvEngine::implicit_gemm;
  try {
    cuda::ConvEngineScope scope(engine);
    const ConvParams p = transposed ? make_conv_transpose2d_params(batch, c_in, size, size, c_out, kernel, kernel,
                                                                   stride, padding, 0)
                                    : make_conv2d_params(batch, c_in, size, size, c_out, kernel, kernel, stride,
                                                         padding);
    const Device gpu = Device::cuda();
    Tensor x = Tensor::full({batch, c_in, size, size}, 0.5f, gpu);
    Tensor weight = transposed ? Tensor::full({c_in, c_out, kernel, kernel}, 0.01f, gpu)
                               : Tensor::full({c_out, c_in, kernel, kernel}, 0.01f, gpu);
    Tensor bias = Tensor::full({c_out}, 0.1f, gpu);
    Tensor y = Tensor::zeros({batch, c_out, p.out_height, p.out_width}, DType::F32, gpu);
    Tensor grad_x = Tensor::zeros(x.shape(), DType::F32, gpu);
    Tensor grad_weight = Tensor::zeros(weight.shape(), DType::F32, gpu);
    const float *xd = x.data<float>(), *wd = weight.data<float>(), *bd = bias.data<float>();
    float *yd = y.data<float>(), *gxd = grad_x.data<float>(), *gwd = grad_weight.data<float>();
    auto work = [&] {
      if (pass == kForward) {
        if (transposed)
          cuda::conv_transpose2d_forward(p, xd, wd, bd, yd);
        else
          cuda::conv2d_forward(p, xd, wd, bd, yd);
      } else {
        float* gx = pass == kBackwardData ? gxd : nullptr;
        float* gw = pass == kBackwardWeight ? gwd : nullptr;
        // y's buffer serves as grad_y (its values do not matter for timing).
        if (transposed)
          cuda::conv_transpose2d_backward(p, xd, wd, yd, gx, gw, nullptr);
        else
          cuda::conv2d_backward(p, xd, wd, yd, gx, gw, nullptr);
      }
    };
    const double macs = static_cast<double>(transposed ? conv_transpose2d_forward_macs(p) : conv2d_forward_macs(p));
    time_on_gpu(state, 2.0 * macs, work);
    std::string label = std::string(cuda::engine_name(engine)) + " " + kPassNames[pass];
    if (engine == cuda::ConvEngine::cudnn)
      label += " [" + cuda::cudnn::chosen_algorithms(transposed ? cuda::transposed_as_conv(p) : p) + "]";
    state.SetLabel(label);
  } catch (const Error& e) {
    state.SkipWithError(e.what());
  }
}

void conv_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "Cin", "Cout", "H", "k", "s", "p", "T", "pass", "engine"});
  struct Shape {
    int64_t c_in_factor, c_out_factor, size, kernel, stride, padding, transposed;
  };
  // Channel counts as multiples of D.
  const Shape shapes[] = {
      {1, 1, 28, 3, 1, 1, 0},  // ConvBlock at 28x28 (inc, up2)
      {1, 1, 28, 3, 2, 1, 0},  // DownConv 28 -> 14
      {1, 2, 14, 3, 2, 1, 0},  // DownConv 14 -> 7, D -> 2D
      {2, 2, 7, 3, 1, 1, 0},   // ConvBlock at 7x7, 2D channels
      {2, 1, 28, 3, 1, 1, 0},  // outc's first conv, on the concatenated skip at 28x28
      {4, 1, 7, 4, 2, 1, 1},   // UpConv 7 -> 14, 4D -> D (after the concat)
      {2, 1, 14, 4, 2, 1, 1},  // UpConv 14 -> 28, 2D -> D
      {2, 2, 1, 7, 7, 0, 1},   // Unflatten 1 -> 7
  };
  for (const auto& [batch, d] : {std::pair<int64_t, int64_t>{128, 64}, std::pair<int64_t, int64_t>{256, 128}})
    for (const Shape& s : shapes)
      for (int64_t pass : {kForward, kBackwardData, kBackwardWeight})
        for (int64_t engine : {0, 1})
          b->Args({batch, s.c_in_factor * d, s.c_out_factor * d, s.size, s.kernel, s.stride, s.padding, s.transposed,
                   pass, engine});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_CudaConv)->Apply(conv_shapes);

// Arguments: M, N, K, trans_a, trans_b, engine (0 cublas, 1 own).
void BM_CudaGemm(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device: GPU benchmarks skipped");
    return;
  }
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const bool trans_a = state.range(3) != 0, trans_b = state.range(4) != 0;
  const bool use_cublas = state.range(5) == 0;
  try {
    const Device gpu = Device::cuda();
    Tensor a = Tensor::full({M * K}, 0.5f, gpu), b = Tensor::full({K * N}, 0.25f, gpu);
    Tensor c = Tensor::zeros({M * N}, DType::F32, gpu);
    const float *ad = a.data<float>(), *bd = b.data<float>();
    float* cd = c.data<float>();
    const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
    auto work = [&] {
      if (use_cublas)
        cuda::cublas_gemm(trans_a, trans_b, M, N, K, 1.0f, ad, lda, bd, ldb, 0.0f, cd, N);
      else
        cuda::gemm(trans_a, trans_b, M, N, K, 1.0f, ad, lda, bd, ldb, 0.0f, cd, N);
    };
    time_on_gpu(state, 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K), work);
    state.SetLabel(use_cublas ? "cublas" : "own");
  } catch (const Error& e) {
    state.SkipWithError(e.what());
  }
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "tA", "tB", "engine"});
  const int64_t shapes[][5] = {
      // linear forward y = x W^T ([batch, in] x [out, in]^T) at the FCBlock's D -> D
      {128, 64, 64, 0, 1},
      {256, 128, 128, 0, 1},
      // linear grad_weight = grad_y^T x (K = batch)
      {128, 128, 256, 1, 0},
      // the 28x28 D -> D 3x3 conv written as one explicit GEMM (im2col): [D, 9D] x [9D, N*28*28]
      {64, 128 * 784, 576, 0, 0},
      // a large square GEMM, for the peak
      {4096, 4096, 4096, 0, 0},
  };
  for (const auto& s : shapes)
    for (int64_t engine : {0, 1}) b->Args({s[0], s[1], s[2], s[3], s[4], engine});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_CudaGemm)->Apply(gemm_shapes);

}  // namespace
}  // namespace engine

#else  // a CPU-only build: one placeholder that says why there is nothing to measure

namespace {
void BM_CudaConv(benchmark::State& state) {
  state.SkipWithError("no CUDA device: this build has no CUDA backend (ENGINE_WITH_CUDA off)");
}
BENCHMARK(BM_CudaConv);
}  // namespace

#endif
