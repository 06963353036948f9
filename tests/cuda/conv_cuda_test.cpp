// conv2d and conv_transpose2d on CUDA against the CPU backend, for BOTH
// engines (cuDNN and our implicit GEMM): outputs and the gradients of x,
// weight and bias at every configuration the UNet uses (3x3 s1 p1; 3x3 s2 p1
// on 28 and on odd 7; transposed 4/2/1, 7/7/0 and 2/2/0), odd and even
// sizes, batch 1, channel counts that are not multiples of the 64 x 128 tile
// (3, 5, 33, 70), a kernel smaller than its stride, output_padding. Also:
// the kernels' accumulate/overwrite contract, bit-identical reruns, the cuDNN
// algorithm cache and workspace limit, an empty batch, and (on the host,
// without a GPU) FastDivmod and the engine switches.
//
// Tolerance. Every output element is a float32 sum of K products, which the
// two devices add in different orders (the CPU's blocked GEMM, the GPU's
// tiles or cuDNN's algorithm). Each ordering's rounding error is bounded by
// (K - 1) 2^-24 sum_k |term_k| in the worst case and is typically about
// 2^-24 sum_k |term_k| (errors of random sign). We allow
//     |gpu - cpu| <= 4 sqrt(K) 2^-24 M_e
// where M_e = sum_k |term_k| for that element, obtained exactly by running
// the same op on the CPU with |x|, |weight|, |bias| and |grad_y| (every term
// then is |term_k|). 4 sqrt(K) is far above the typical error and far below
// the error of any wrong index (one missing or extra term changes the value
// by about M_e / K). TF32 is off (allow_tf32() defaults to false): with it
// the products themselves would carry ~2^-11 relative error.
// cuDNN may pick FFT or Winograd algorithms, whose rounding error is spread
// over the whole transform rather than per element; for the cuDNN engine the
// bound gets an extra normwise term 256 * 2^-24 * max_e M_e (1.5e-5 of the
// largest magnitude, still 100x below one term of the smallest K here).
#include <gtest/gtest.h>

#include "core/device.h"

#ifdef ENGINE_WITH_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/common/conv_params.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/conv_implicit_gemm.h"
#include "kernels/cuda/engine_select.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using cuda::ConvEngine;
using cuda::ConvEngineScope;
using testing::random_tensor;

constexpr const char* kNoGpu = "no CUDA device: the CUDA conv kernels are untested here (compiles only)";
constexpr double kUnitRoundoff = 1.0 / (1 << 24);  // 2^-24

// For conv2d the weight is [c_out, c_in, k, k]; for conv_transpose2d [c_in, c_out, k, k].
struct Config {
  bool transposed;
  int64_t batch, c_in, c_out, height, width, kernel, stride, padding, output_padding;
};

std::string describe(const Config& c) {
  return std::string(c.transposed ? "conv_transpose2d" : "conv2d") + " x [" + std::to_string(c.batch) + ", " +
         std::to_string(c.c_in) + ", " + std::to_string(c.height) + ", " + std::to_string(c.width) + "] -> " +
         std::to_string(c.c_out) + " channels, kernel " + std::to_string(c.kernel) + " stride " +
         std::to_string(c.stride) + " padding " + std::to_string(c.padding) + " output_padding " +
         std::to_string(c.output_padding);
}

const std::vector<Config> kConfigs = {
    // transposed, N, C_in, C_out, H, W, k, s, p, output_padding
    // ConvBlock: 3x3 stride 1 padding 1, at 28 and at 7; non-square; batch 1.
    {false, 2, 3, 5, 28, 28, 3, 1, 1, 0},
    {false, 1, 33, 5, 7, 7, 3, 1, 1, 0},
    {false, 2, 5, 33, 9, 8, 3, 1, 1, 0},
    // DownBlock: 3x3 stride 2 padding 1, on even 28 and odd 7.
    {false, 2, 5, 3, 28, 28, 3, 2, 1, 0},
    {false, 1, 3, 5, 7, 7, 3, 2, 1, 0},
    // 2/2/0 and 7/7/0 (and a kernel smaller than the stride: pixels no tap reaches).
    {false, 2, 3, 5, 6, 5, 2, 2, 0, 0},
    {false, 2, 5, 3, 7, 7, 7, 7, 0, 0},
    {false, 2, 3, 4, 8, 8, 2, 3, 0, 0},
    // More than one tile in every GEMM dimension: 70 > 64 channels, 2*12*12 = 288 > 128
    // pixels, K = 20*9 = 180 (not a multiple of 16).
    {false, 2, 20, 70, 12, 12, 3, 1, 1, 0},
    // A long weight-gradient reduction (16*14*14 = 3136 pixels): split-K with several chunks.
    {false, 16, 8, 8, 14, 14, 3, 1, 1, 0},
    // One output tile and a long forward reduction (40*49 = 1960): the forward's split-K.
    {false, 2, 40, 6, 7, 7, 7, 7, 0, 0},
    // UpBlock: transposed 4/2/1, 7 -> 14 and 14 -> 28.
    {true, 2, 33, 5, 7, 7, 4, 2, 1, 0},
    {true, 1, 5, 3, 14, 14, 4, 2, 1, 0},
    // Unflatten: transposed 7/7/0 from 1x1 to 7x7.
    {true, 2, 5, 33, 1, 1, 7, 7, 0, 0},
    // 2/2/0, 3/1/1, output_padding, kernel smaller than stride, several tiles.
    {true, 2, 3, 5, 3, 4, 2, 2, 0, 0},
    {true, 1, 3, 5, 5, 4, 3, 1, 1, 0},
    {true, 2, 3, 2, 4, 3, 3, 2, 1, 1},
    {true, 2, 3, 4, 3, 3, 2, 3, 0, 0},
    {true, 3, 20, 70, 6, 6, 4, 2, 1, 0},
};

ConvParams params_of(const Config& c) {
  return c.transposed ? make_conv_transpose2d_params(c.batch, c.c_in, c.height, c.width, c.c_out, c.kernel, c.kernel,
                                                     c.stride, c.padding, c.output_padding)
                      : make_conv2d_params(c.batch, c.c_in, c.height, c.width, c.c_out, c.kernel, c.kernel, c.stride,
                                           c.padding);
}

// Terms per element of y, grad_x, grad_weight, grad_bias (upper bounds).
struct TermCounts {
  double y, grad_x, grad_weight, grad_bias;
};

TermCounts term_counts(const Config& c) {
  const ConvParams p = params_of(c);
  const double taps = static_cast<double>(c.kernel * c.kernel);
  const double phase_taps = std::pow(static_cast<double>((c.kernel + c.stride - 1) / c.stride), 2.0);
  const double out_pixels = static_cast<double>(c.batch * p.out_height * p.out_width);
  const double in_pixels = static_cast<double>(c.batch * c.height * c.width);
  if (!c.transposed)
    return {c.c_in * taps + 1, c.c_out * phase_taps, out_pixels, out_pixels};
  return {c.c_in * phase_taps + 1, c.c_out * taps, in_pixels, out_pixels};
}

struct Inputs {
  Tensor x, weight, bias, grad_y;  // on the CPU
};

Inputs make_inputs(const Config& c, bool with_bias, uint64_t seed) {
  const ConvParams p = params_of(c);
  Inputs in;
  in.x = random_tensor({c.batch, c.c_in, c.height, c.width}, seed);
  in.weight = c.transposed ? random_tensor({c.c_in, c.c_out, c.kernel, c.kernel}, seed + 1)
                           : random_tensor({c.c_out, c.c_in, c.kernel, c.kernel}, seed + 1);
  if (with_bias) in.bias = random_tensor({c.c_out}, seed + 2);
  in.grad_y = random_tensor({c.batch, c.c_out, p.out_height, p.out_width}, seed + 3);
  return in;
}

Tensor absolute(const Tensor& t) {
  if (!t.defined()) return Tensor();
  std::vector<float> values = t.to_vector();
  for (float& v : values) v = std::fabs(v);
  return Tensor::from_vector(values, t.shape(), t.device());
}

// y, grad_x, grad_weight, grad_bias as host vectors (the last empty without a bias).
struct Results {
  std::vector<float> y, grad_x, grad_weight, grad_bias;
};

// Forward and backward (L = sum(y * grad_y), so dL/dy = grad_y exactly) on
// `device`; `which` (bit 0: x, 1: weight, 2: bias) selects the inputs that
// require a gradient.
Results run(const Config& c, const Inputs& cpu_inputs, Device device, int which = 7) {
  Tensor x = cpu_inputs.x.to(device), weight = cpu_inputs.weight.to(device);
  Tensor bias = cpu_inputs.bias.defined() ? cpu_inputs.bias.to(device) : Tensor();
  if (which & 1) x.set_requires_grad();
  if (which & 2) weight.set_requires_grad();
  if ((which & 4) && bias.defined()) bias.set_requires_grad();
  Tensor y = c.transposed ? conv_transpose2d(x, weight, bias, c.stride, c.padding, c.output_padding)
                          : conv2d(x, weight, bias, c.stride, c.padding);
  EXPECT_EQ(y.device(), device);
  sum(mul(y, cpu_inputs.grad_y.to(device))).backward();
  Results r;
  r.y = y.to_vector();
  if (which & 1) r.grad_x = x.grad().to_vector();
  if (which & 2) r.grad_weight = weight.grad().to_vector();
  if ((which & 4) && bias.defined()) r.grad_bias = bias.grad().to_vector();
  return r;
}

// |gpu - cpu| <= 4 sqrt(K) 2^-24 M_e (+ normwise * 2^-24 * max M): see the top of the file.
void expect_matches(const std::vector<float>& gpu, const std::vector<float>& cpu, const std::vector<float>& magnitude,
                    double terms, double normwise, const char* what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  ASSERT_EQ(magnitude.size(), cpu.size()) << what;
  double max_magnitude = 0.0;
  for (float m : magnitude) max_magnitude = std::max(max_magnitude, static_cast<double>(m));
  int reported = 0;
  for (std::size_t i = 0; i < gpu.size(); ++i) {
    const double bound =
        4.0 * std::sqrt(terms) * kUnitRoundoff * magnitude[i] + normwise * kUnitRoundoff * max_magnitude;
    const double error = std::fabs(static_cast<double>(gpu[i]) - cpu[i]);
    if (!(error <= bound) && reported++ < 8)
      ADD_FAILURE() << what << " element " << i << ": cuda " << gpu[i] << ", cpu " << cpu[i] << ", |diff| " << error
                    << " > bound " << bound << " (magnitude " << magnitude[i] << ", " << terms << " terms)";
  }
}

// Runs `c` on the GPU with the current engine and compares with the CPU.
void expect_config_matches_cpu(const Config& c, bool with_bias, uint64_t seed, double normwise, int which = 7) {
  const Inputs in = make_inputs(c, with_bias, seed);
  const Results gpu = run(c, in, Device::cuda(), which);
  const Results cpu = run(c, in, Device::cpu(), which);
  // Magnitudes: the same computation on absolute values.
  const Inputs abs_in{absolute(in.x), absolute(in.weight), absolute(in.bias), absolute(in.grad_y)};
  const Results magnitude = run(c, abs_in, Device::cpu(), which);
  const TermCounts terms = term_counts(c);
  expect_matches(gpu.y, cpu.y, magnitude.y, terms.y, normwise, "y");
  if (which & 1) expect_matches(gpu.grad_x, cpu.grad_x, magnitude.grad_x, terms.grad_x, normwise, "grad_x");
  if (which & 2)
    expect_matches(gpu.grad_weight, cpu.grad_weight, magnitude.grad_weight, terms.grad_weight, normwise,
                   "grad_weight");
  if ((which & 4) && with_bias)
    expect_matches(gpu.grad_bias, cpu.grad_bias, magnitude.grad_bias, terms.grad_bias, normwise, "grad_bias");
}

double normwise_term(ConvEngine engine) { return engine == ConvEngine::cudnn ? 256.0 : 0.0; }

void expect_every_config_matches_cpu(ConvEngine engine) {
  ConvEngineScope scope(engine);
  uint64_t seed = 1000;
  for (const Config& c : kConfigs) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(std::string(cuda::engine_name(engine)) + ": " + describe(c) +
                   (with_bias ? ", with bias" : ", no bias"));
      expect_config_matches_cpu(c, with_bias, seed += 10, normwise_term(engine));
    }
  }
}

TEST(ConvCuda, CudnnMatchesCpuAtEveryConfiguration) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  ASSERT_FALSE(cuda::allow_tf32()) << "TF32 must be off by default (parity with the CPU)";
  expect_every_config_matches_cpu(ConvEngine::cudnn);
}

TEST(ConvCuda, ImplicitGemmMatchesCpuAtEveryConfiguration) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  expect_every_config_matches_cpu(ConvEngine::implicit_gemm);
}

TEST(ConvCuda, GradientOfOneArgumentOnly) {
  // The null-gradient paths: each of x, weight, bias alone requires grad.
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  for (ConvEngine engine : {ConvEngine::cudnn, ConvEngine::implicit_gemm}) {
    ConvEngineScope scope(engine);
    for (const Config& c : {kConfigs[3], kConfigs[11]}) {
      for (int which : {1, 2, 4}) {
        SCOPED_TRACE(std::string(cuda::engine_name(engine)) + ": " + describe(c) + ", gradient mask " +
                     std::to_string(which));
        expect_config_matches_cpu(c, true, 300 + which, normwise_term(engine), which);
      }
    }
  }
}

TEST(ConvCuda, WorkspaceLimitZeroStillCorrect) {
  // With no workspace allowed cuDNN must fall back to algorithms that need none.
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  ConvEngineScope scope(ConvEngine::cudnn);
  const std::size_t saved = cuda::cudnn_workspace_limit();
  cuda::set_cudnn_workspace_limit(0);
  for (const Config& c : {kConfigs[0], kConfigs[11], kConfigs[13]}) {
    SCOPED_TRACE(describe(c));
    expect_config_matches_cpu(c, true, 77, normwise_term(ConvEngine::cudnn));
  }
  cuda::set_cudnn_workspace_limit(saved);
}

TEST(ConvCuda, SameBitsOnEveryRun) {
  // Deterministic mode (cuDNN) and our kernels (always): two runs, same bits,
  // including the split-K weight gradient and the bias reduction.
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  ASSERT_TRUE(cuda::cudnn_deterministic()) << "deterministic mode is the default";
  for (ConvEngine engine : {ConvEngine::cudnn, ConvEngine::implicit_gemm}) {
    ConvEngineScope scope(engine);
    for (const Config& c : {kConfigs[9], kConfigs[10], kConfigs[11], kConfigs[18]}) {
      SCOPED_TRACE(std::string(cuda::engine_name(engine)) + ": " + describe(c));
      const Inputs in = make_inputs(c, true, 55);
      const Results first = run(c, in, Device::cuda());
      const Results second = run(c, in, Device::cuda());
      for (const auto& [a, b, what] : {std::make_tuple(&first.y, &second.y, "y"),
                                       std::make_tuple(&first.grad_x, &second.grad_x, "grad_x"),
                                       std::make_tuple(&first.grad_weight, &second.grad_weight, "grad_weight"),
                                       std::make_tuple(&first.grad_bias, &second.grad_bias, "grad_bias")}) {
        ASSERT_EQ(a->size(), b->size()) << what;
        EXPECT_EQ(std::memcmp(a->data(), b->data(), a->size() * sizeof(float)), 0) << what << " differs between runs";
      }
    }
  }
}

TEST(ConvCuda, CudnnPicksEachAlgorithmOncePerShape) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  ConvEngineScope scope(ConvEngine::cudnn);
  cuda::cudnn::clear_algorithm_cache();
  EXPECT_EQ(cuda::cudnn::algorithm_cache_size(), 0u);
  const Inputs in = make_inputs(kConfigs[0], true, 9);
  run(kConfigs[0], in, Device::cuda());  // forward, backward data, backward filter: 3 choices
  EXPECT_EQ(cuda::cudnn::algorithm_cache_size(), 3u);
  run(kConfigs[0], in, Device::cuda());  // the same shape again: no new choice
  EXPECT_EQ(cuda::cudnn::algorithm_cache_size(), 3u);
  const std::string chosen = cuda::cudnn::chosen_algorithms(params_of(kConfigs[0]));
  EXPECT_EQ(chosen.find('-'), std::string::npos) << chosen;
  const Inputs in2 = make_inputs(kConfigs[11], true, 10);
  run(kConfigs[11], in2, Device::cuda());  // a new shape: 3 more
  EXPECT_EQ(cuda::cudnn::algorithm_cache_size(), 6u);
  // A different switch is a different key (the choice may differ).
  cuda::set_cudnn_deterministic(false);
  run(kConfigs[0], in, Device::cuda());
  cuda::set_cudnn_deterministic(true);
  EXPECT_EQ(cuda::cudnn::algorithm_cache_size(), 9u);
}

// The kernel-layer contract on device pointers: forward overwrites whatever
// y held (NaN here), backward adds onto the gradient buffers.
TEST(ConvCuda, ForwardOverwritesBackwardAccumulates) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  for (ConvEngine engine : {ConvEngine::cudnn, ConvEngine::implicit_gemm}) {
    ConvEngineScope scope(engine);
    for (const Config& c : {kConfigs[4], kConfigs[10], kConfigs[16]}) {
      SCOPED_TRACE(std::string(cuda::engine_name(engine)) + ": " + describe(c));
      const ConvParams p = params_of(c);
      const Inputs in = make_inputs(c, true, 21);
      const Device gpu = Device::cuda();
      Tensor x = in.x.to(gpu), w = in.weight.to(gpu), b = in.bias.to(gpu), gy = in.grad_y.to(gpu);
      Tensor y = Tensor::full(in.grad_y.shape(), std::numeric_limits<float>::quiet_NaN(), gpu);
      auto forward = c.transposed ? cuda::conv_transpose2d_forward : cuda::conv2d_forward;
      auto backward = c.transposed ? cuda::conv_transpose2d_backward : cuda::conv2d_backward;
      forward(p, x.data<float>(), w.data<float>(), b.data<float>(), y.data<float>());
      for (float v : y.to_vector()) ASSERT_FALSE(std::isnan(v)) << "forward left an old value of y in place";

      Tensor gx = Tensor::zeros(x.shape(), DType::F32, gpu), gw = Tensor::zeros(w.shape(), DType::F32, gpu);
      Tensor gb = Tensor::zeros(b.shape(), DType::F32, gpu);
      backward(p, x.data<float>(), w.data<float>(), gy.data<float>(), gx.data<float>(), gw.data<float>(),
               gb.data<float>());
      const std::vector<float> once_x = gx.to_vector(), once_w = gw.to_vector(), once_b = gb.to_vector();
      backward(p, x.data<float>(), w.data<float>(), gy.data<float>(), gx.data<float>(), gw.data<float>(),
               gb.data<float>());
      auto doubled = [](const std::vector<float>& twice, const std::vector<float>& once, const char* what) {
        // The second pass adds each contribution onto a non-zero value: not bit-exact.
        for (std::size_t i = 0; i < twice.size(); ++i)
          EXPECT_NEAR(twice[i], 2 * once[i], 1e-5 * (1 + std::fabs(once[i]))) << what << " element " << i;
      };
      doubled(gx.to_vector(), once_x, "grad_x");
      doubled(gw.to_vector(), once_w, "grad_weight");
      doubled(gb.to_vector(), once_b, "grad_bias");
    }
  }
}

TEST(ConvCuda, EmptyBatch) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  for (ConvEngine engine : {ConvEngine::cudnn, ConvEngine::implicit_gemm}) {
    ConvEngineScope scope(engine);
    SCOPED_TRACE(cuda::engine_name(engine));
    Tensor x = Tensor::zeros({0, 3, 5, 5}, DType::F32, Device::cuda()).set_requires_grad();
    Tensor w = random_tensor({4, 3, 3, 3}, 7).to(Device::cuda()).set_requires_grad();
    Tensor b = random_tensor({4}, 8).to(Device::cuda()).set_requires_grad();
    Tensor y = conv2d(x, w, b, 2, 1);
    EXPECT_EQ(y.shape(), (Shape{0, 4, 3, 3}));
    sum(y).backward();
    for (float v : w.grad().to_vector()) EXPECT_EQ(v, 0.0f);
    for (float v : b.grad().to_vector()) EXPECT_EQ(v, 0.0f);
    EXPECT_EQ(conv_transpose2d(Tensor::zeros({0, 4, 3, 3}, DType::F32, Device::cuda()), w, Tensor(), 2, 1).shape(),
              (Shape{0, 3, 5, 5}));
  }
}

// --- Host-only tests (no GPU needed) ---------------------------------------------

TEST(ConvCudaHost, FastDivmodIsExact) {
  using cuda::implicit_gemm::FastDivmod;
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 300; ++d) divisors.push_back(d);
  for (uint32_t shift = 9; shift <= 31; ++shift) {
    const uint32_t power = uint32_t{1} << shift;
    for (uint32_t d : {power - 1, power, power + 1}) if (d < (uint32_t{1} << 31)) divisors.push_back(d);
  }
  for (uint32_t d : {784u, 49u, 196u, 576u, 1152u, 100352u, 2147483647u}) divisors.push_back(d);
  std::mt19937_64 gen(3);
  std::uniform_int_distribution<int> any(0, std::numeric_limits<int>::max());
  for (uint32_t d : divisors) {
    const FastDivmod fast(d);
    const int di = static_cast<int>(d);
    std::vector<int> numerators = {0, 1, di - 1, di, std::numeric_limits<int>::max(),
                                   std::numeric_limits<int>::max() - 1};
    if (di <= std::numeric_limits<int>::max() / 3) numerators.insert(numerators.end(), {di + 1, 2 * di - 1, 3 * di});
    for (int i = 0; i < 200; ++i) numerators.push_back(any(gen));
    for (int n = 0; n < 2000; ++n) numerators.push_back(n);
    for (int n : numerators) {
      if (n < 0) continue;
      int q = 0, r = 0;
      fast.divmod(n, q, r);
      ASSERT_EQ(q, n / di) << n << " / " << d;
      ASSERT_EQ(r, n % di) << n << " % " << d;
    }
  }
}

TEST(ConvCudaHost, WeightGradChunksDependOnTheShapeOnly) {
  using cuda::implicit_gemm::weight_grad_chunks;
  // The UNet's 28x28 ConvBlock at batch 128: a long reduction, several chunks.
  const int chunks = weight_grad_chunks(64, 64 * 9, 128 * 28 * 28);
  EXPECT_GT(chunks, 1);
  EXPECT_EQ(chunks, weight_grad_chunks(64, 64 * 9, 128 * 28 * 28));
  // Short reductions are not split.
  EXPECT_EQ(weight_grad_chunks(64, 576, 100), 1);
  EXPECT_GE(weight_grad_chunks(1, 1, 1), 1);
}

TEST(ConvCudaHost, EngineSwitches) {
  EXPECT_EQ(cuda::parse_conv_engine("cudnn", "test"), ConvEngine::cudnn);
  EXPECT_EQ(cuda::parse_conv_engine("implicit_gemm", "test"), ConvEngine::implicit_gemm);
  EXPECT_EQ(cuda::parse_gemm_engine("cublas", "test"), cuda::GemmEngine::cublas);
  EXPECT_EQ(cuda::parse_gemm_engine("own", "test"), cuda::GemmEngine::own);
  try {
    cuda::parse_conv_engine("winograd", "environment variable ENGINE_CONV_ENGINE");
    ADD_FAILURE() << "expected an engine::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* fragment : {"ENGINE_CONV_ENGINE", "'cudnn'", "'implicit_gemm'", "'winograd'"})
      EXPECT_NE(msg.find(fragment), std::string::npos) << fragment << " not in: " << msg;
  }
  try {
    cuda::parse_gemm_engine("", "environment variable ENGINE_GEMM_ENGINE");
    ADD_FAILURE() << "expected an engine::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'cublas' or 'own'"), std::string::npos) << e.what();
  }
  const ConvEngine before = cuda::conv_engine();
  {
    ConvEngineScope scope(ConvEngine::implicit_gemm);
    EXPECT_EQ(cuda::conv_engine(), ConvEngine::implicit_gemm);
  }
  EXPECT_EQ(cuda::conv_engine(), before);
  EXPECT_STREQ(cuda::engine_name(ConvEngine::implicit_gemm), "implicit_gemm");
  EXPECT_STREQ(cuda::engine_name(cuda::GemmEngine::own), "own");
}

TEST(ConvCudaHost, TransposedConvIsTheConvFromYToX) {
  // The mapping conv.cu relies on: conv_transpose2d(p) is the data gradient
  // of the convolution transposed_as_conv(p), whose output size formula gives
  // back p's input size (output_padding included).
  for (const Config& c : kConfigs) {
    if (!c.transposed) continue;
    SCOPED_TRACE(describe(c));
    const ConvParams p = params_of(c);
    const ConvParams conv = cuda::transposed_as_conv(p);
    EXPECT_EQ(conv.in_channels, p.out_channels);
    EXPECT_EQ(conv.out_channels, p.in_channels);
    EXPECT_EQ(conv2d_output_size(conv.in_height, conv.kernel_h, conv.stride, conv.padding), p.in_height);
    EXPECT_EQ(conv2d_output_size(conv.in_width, conv.kernel_w, conv.stride, conv.padding), p.in_width);
    EXPECT_EQ(conv.out_height, p.in_height);
    EXPECT_EQ(conv.out_width, p.in_width);
  }
}

}  // namespace
}  // namespace engine

#else  // a CPU-only build

TEST(ConvCuda, SkippedInCpuOnlyBuild) {
  GTEST_SKIP() << "no CUDA device: this build has no CUDA backend (ENGINE_WITH_CUDA off)";
}

#endif
