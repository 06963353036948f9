// conv2d and conv_transpose2d (im2col + GEMM) at the shapes of the
// assignment's UNet (MNIST 28x28, D = 64 channels, doubled to 128 at 7x7),
// forward alone and forward + backward (grad of x, weight and bias).
// Counter: GFLOP/s, counting 2 FLOPs per multiply-add; forward + backward
// counts three times the forward (the data and weight gradients each cost
// one forward).
//
// Arguments: N (batch), Cin, Cout, H (= W, the input size), k, s, p.
// Every shape is registered at the assignment's batch 128 and at batch 8
// (quick). On 2 cores a batch-128 forward+backward takes seconds, so run
// these with a filter and a short minimum time, e.g.
//   ./bench/engine_bench --benchmark_filter='Conv.*/N:8/' --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/common/conv_params.h"
#include "kernels/cpu/conv.h"

namespace engine {
namespace {

struct Case {
  int64_t batch, in_channels, out_channels, size, kernel, stride, padding;
};

Case case_from(const benchmark::State& state) {
  return {state.range(0), state.range(1), state.range(2), state.range(3),
          state.range(4), state.range(5), state.range(6)};
}

// Forward multiply-adds of the case.
int64_t forward_macs(const Case& c, bool transposed) {
  if (transposed)
    return conv_transpose2d_forward_macs(make_conv_transpose2d_params(
        c.batch, c.in_channels, c.size, c.size, c.out_channels, c.kernel, c.kernel, c.stride, c.padding, 0));
  return conv2d_forward_macs(make_conv2d_params(c.batch, c.in_channels, c.size, c.size, c.out_channels, c.kernel,
                                                c.kernel, c.stride, c.padding));
}

void set_flops_counter(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * 1e-9 * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

void run_conv(benchmark::State& state, bool transposed, bool with_backward) {
  const Case c = case_from(state);
  Tensor x = Tensor::full({c.batch, c.in_channels, c.size, c.size}, 0.5f);
  Tensor weight = transposed ? Tensor::full({c.in_channels, c.out_channels, c.kernel, c.kernel}, 0.01f)
                             : Tensor::full({c.out_channels, c.in_channels, c.kernel, c.kernel}, 0.01f);
  Tensor bias = Tensor::full({c.out_channels}, 0.1f);
  auto forward = [&] {
    return transposed ? conv_transpose2d(x, weight, bias, c.stride, c.padding)
                      : conv2d(x, weight, bias, c.stride, c.padding);
  };
  if (with_backward) {
    x.set_requires_grad();
    weight.set_requires_grad();
    bias.set_requires_grad();
    const Tensor grad_y = Tensor::full(forward().shape(), 1.0f);
    for (auto _ : state) {
      Tensor y = forward();
      autograd::backward(y, grad_y);
      x.zero_grad();
      weight.zero_grad();
      bias.zero_grad();
    }
  } else {
    autograd::NoGradGuard no_grad;
    for (auto _ : state) benchmark::DoNotOptimize(forward().raw_data());
  }
  set_flops_counter(state, 2.0 * static_cast<double>(forward_macs(c, transposed)) * (with_backward ? 3.0 : 1.0));
}

void BM_Conv2dForward(benchmark::State& state) { run_conv(state, false, false); }
void BM_Conv2dForwardBackward(benchmark::State& state) { run_conv(state, false, true); }
void BM_ConvTranspose2dForward(benchmark::State& state) { run_conv(state, true, false); }
void BM_ConvTranspose2dForwardBackward(benchmark::State& state) { run_conv(state, true, true); }

// The UNet's convolutions at D = 64.
void conv_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "Cin", "Cout", "H", "k", "s", "p"});
  for (int64_t batch : {8, 128}) {
    b->Args({batch, 64, 64, 28, 3, 1, 1});    // ConvBlock at 28x28
    b->Args({batch, 64, 64, 28, 3, 2, 1});    // DownBlock 28 -> 14
    b->Args({batch, 64, 64, 14, 3, 1, 1});    // ConvBlock at 14x14
    b->Args({batch, 128, 128, 7, 3, 1, 1});   // ConvBlock at 7x7, 2D channels
    b->Args({batch, 128, 64, 28, 3, 1, 1});   // ConvBlock on the concatenated skip at 28x28
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

// The UNet's transposed convolutions at D = 64.
void conv_transpose_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "Cin", "Cout", "H", "k", "s", "p"});
  for (int64_t batch : {8, 128}) {
    b->Args({batch, 256, 64, 7, 4, 2, 1});    // UpBlock 7 -> 14, 4D -> D (after the concat)
    b->Args({batch, 128, 64, 14, 4, 2, 1});   // UpBlock 14 -> 28, 2D -> D
    b->Args({batch, 128, 128, 1, 7, 7, 0});   // Unflatten 1 -> 7
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

// The data movements around the GEMMs, for one image of the ConvBlock at
// 28x28 (64 channels, 3x3, stride 1, padding 1: a 576 x 784 column matrix,
// 1.8 MB). Memory-bound: GB/s counts the bytes of the column matrix plus
// the image (col2im reads and writes the image).
const cpu::ImageGeometry kConvBlockImage{64, 28, 28, 3, 3, 1, 1, 28, 28};

void BM_Im2col(benchmark::State& state) {
  const cpu::ImageGeometry& g = kConvBlockImage;
  const int64_t positions = g.out_height * g.out_width;
  std::vector<float> image(static_cast<std::size_t>(g.channels * g.height * g.width), 0.5f);
  std::vector<float> columns(static_cast<std::size_t>(g.channels * g.kernel_h * g.kernel_w * positions));
  for (auto _ : state) {
    cpu::im2col(g, image.data(), columns.data(), positions);
    benchmark::DoNotOptimize(columns.data());
  }
  const double bytes = 4.0 * static_cast<double>(columns.size() + image.size());
  state.counters["GB/s"] = benchmark::Counter(bytes * static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Im2col)->Unit(benchmark::kMicrosecond);

void BM_Col2imAdd(benchmark::State& state) {
  const cpu::ImageGeometry& g = kConvBlockImage;
  const int64_t positions = g.out_height * g.out_width;
  std::vector<float> image(static_cast<std::size_t>(g.channels * g.height * g.width), 0.0f);
  std::vector<float> columns(static_cast<std::size_t>(g.channels * g.kernel_h * g.kernel_w * positions), 1e-3f);
  for (auto _ : state) {
    cpu::col2im_add(g, columns.data(), positions, image.data());
    benchmark::DoNotOptimize(image.data());
  }
  const double bytes = 4.0 * static_cast<double>(columns.size() + 2 * image.size());
  state.counters["GB/s"] = benchmark::Counter(bytes * static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Col2imAdd)->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_Conv2dForward)->Apply(conv_shapes);
BENCHMARK(BM_Conv2dForwardBackward)->Apply(conv_shapes);
BENCHMARK(BM_ConvTranspose2dForward)->Apply(conv_transpose_shapes);
BENCHMARK(BM_ConvTranspose2dForwardBackward)->Apply(conv_transpose_shapes);

}  // namespace
}  // namespace engine
