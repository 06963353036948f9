// linear and the two GEMM engines on CUDA against the CPU backend.
//
// linear: outputs and the gradients of x, weight and bias on CUDA against the
// CPU, with cuBLAS and with our own tiled GEMM, at the UNet's FCBlock shapes
// (batch 128 / 256, 1 -> D, 10 -> D, D -> D) and at odd shapes (batch 1 and
// 3, sizes 5, 33, 70, 129: not multiples of the 64 x 128 tile).
// GEMM: both engines directly against cpu::gemm_reference (summed in double)
// for all four transpose combinations, padded leading dimensions, alpha and
// beta, beta = 0 with NaN in C (C must not be read), K = 0.
//
// Tolerance, as in conv_cuda_test.cpp: each element is a float32 sum of K
// products added in a different order on each device; we allow
//     |gpu - cpu| <= 4 sqrt(K) 2^-24 M_e,     M_e = sum_k |term_k|
// with M_e computed exactly by the same operation on absolute values (the
// typical rounding error is about 2^-24 M_e, a wrong or missing term about
// M_e / K). TF32 is off by default, so cuBLAS computes in plain FP32.
#include <gtest/gtest.h>

#include "core/device.h"

#ifdef ENGINE_WITH_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/cublas.h"
#include "kernels/cuda/engine_select.h"
#include "kernels/cuda/gemm.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using cuda::GemmEngine;
using cuda::GemmEngineScope;
using testing::random_tensor;

constexpr const char* kNoGpu = "no CUDA device: the CUDA GEMM and linear kernels are untested here (compiles only)";
constexpr double kUnitRoundoff = 1.0 / (1 << 24);

void expect_matches(const std::vector<float>& gpu, const std::vector<float>& cpu, const std::vector<float>& magnitude,
                    double terms, const char* what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  ASSERT_EQ(magnitude.size(), cpu.size()) << what;
  int reported = 0;
  for (std::size_t i = 0; i < gpu.size(); ++i) {
    const double bound = 4.0 * std::sqrt(std::max(terms, 1.0)) * kUnitRoundoff * magnitude[i];
    const double error = std::fabs(static_cast<double>(gpu[i]) - cpu[i]);
    if (!(error <= bound) && reported++ < 8)
      ADD_FAILURE() << what << " element " << i << ": cuda " << gpu[i] << ", cpu " << cpu[i] << ", |diff| " << error
                    << " > bound " << bound << " (magnitude " << magnitude[i] << ", " << terms << " terms)";
  }
}

std::vector<float> absolute(std::vector<float> values) {
  for (float& v : values) v = std::fabs(v);
  return values;
}

Tensor absolute(const Tensor& t) {
  return t.defined() ? Tensor::from_vector(absolute(t.to_vector()), t.shape(), t.device()) : Tensor();
}

// --- linear ------------------------------------------------------------------------

struct LinearShape {
  int64_t batch, in, out;
};

const std::vector<LinearShape> kLinearShapes = {
    {128, 1, 64},    // FCBlock of the time-conditioned UNet: t -> D
    {128, 64, 64},   // FCBlock's second layer, D -> D
    {128, 10, 64},   // class-conditioned: one-hot -> D
    {256, 128, 128}, // D = 128, batch 256
    {1, 33, 5},      // batch 1, odd sizes
    {3, 5, 33},
    {70, 130, 129},  // more than one tile in every dimension
};

struct LinearInputs {
  Tensor x, weight, bias, grad_y;
};

struct LinearResults {
  std::vector<float> y, grad_x, grad_weight, grad_bias;
};

LinearResults run_linear(const LinearInputs& in, Device device, int which = 7) {
  Tensor x = in.x.to(device), w = in.weight.to(device), b = in.bias.to(device);
  if (which & 1) x.set_requires_grad();
  if (which & 2) w.set_requires_grad();
  if (which & 4) b.set_requires_grad();
  Tensor y = linear(x, w, b);
  EXPECT_EQ(y.device(), device);
  sum(mul(y, in.grad_y.to(device))).backward();
  LinearResults r;
  r.y = y.to_vector();
  if (which & 1) r.grad_x = x.grad().to_vector();
  if (which & 2) r.grad_weight = w.grad().to_vector();
  if (which & 4) r.grad_bias = b.grad().to_vector();
  return r;
}

void expect_linear_matches_cpu(const LinearShape& s, uint64_t seed, int which = 7) {
  LinearInputs in{random_tensor({s.batch, s.in}, seed), random_tensor({s.out, s.in}, seed + 1),
                  random_tensor({s.out}, seed + 2), random_tensor({s.batch, s.out}, seed + 3)};
  const LinearResults gpu = run_linear(in, Device::cuda(), which);
  const LinearResults cpu = run_linear(in, Device::cpu(), which);
  const LinearInputs abs_in{absolute(in.x), absolute(in.weight), absolute(in.bias), absolute(in.grad_y)};
  const LinearResults magnitude = run_linear(abs_in, Device::cpu(), which);
  expect_matches(gpu.y, cpu.y, magnitude.y, static_cast<double>(s.in + 1), "y");
  if (which & 1) expect_matches(gpu.grad_x, cpu.grad_x, magnitude.grad_x, static_cast<double>(s.out), "grad_x");
  if (which & 2)
    expect_matches(gpu.grad_weight, cpu.grad_weight, magnitude.grad_weight, static_cast<double>(s.batch),
                   "grad_weight");
  if (which & 4)
    expect_matches(gpu.grad_bias, cpu.grad_bias, magnitude.grad_bias, static_cast<double>(s.batch), "grad_bias");
}

std::string describe(const LinearShape& s) {
  return "linear [" + std::to_string(s.batch) + ", " + std::to_string(s.in) + "] -> " + std::to_string(s.out);
}

TEST(LinearCuda, CublasMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  ASSERT_FALSE(cuda::allow_tf32()) << "TF32 must be off by default (parity with the CPU)";
  GemmEngineScope scope(GemmEngine::cublas);
  uint64_t seed = 10;
  for (const LinearShape& s : kLinearShapes) {
    SCOPED_TRACE("cublas: " + describe(s));
    expect_linear_matches_cpu(s, seed += 10);
  }
}

TEST(LinearCuda, OwnGemmMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  GemmEngineScope scope(GemmEngine::own);
  uint64_t seed = 10;
  for (const LinearShape& s : kLinearShapes) {
    SCOPED_TRACE("own: " + describe(s));
    expect_linear_matches_cpu(s, seed += 10);
  }
}

TEST(LinearCuda, GradientOfOneArgumentOnly) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  for (GemmEngine engine : {GemmEngine::cublas, GemmEngine::own}) {
    GemmEngineScope scope(engine);
    for (int which : {1, 2, 4}) {
      SCOPED_TRACE(std::string(cuda::engine_name(engine)) + ", gradient mask " + std::to_string(which));
      expect_linear_matches_cpu(kLinearShapes[5], 70 + which, which);
    }
  }
}

TEST(LinearCuda, SameBitsOnEveryRun) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  for (GemmEngine engine : {GemmEngine::cublas, GemmEngine::own}) {
    GemmEngineScope scope(engine);
    SCOPED_TRACE(cuda::engine_name(engine));
    const LinearShape s = kLinearShapes[3];
    LinearInputs in{random_tensor({s.batch, s.in}, 1), random_tensor({s.out, s.in}, 2), random_tensor({s.out}, 3),
                    random_tensor({s.batch, s.out}, 4)};
    const LinearResults first = run_linear(in, Device::cuda()), second = run_linear(in, Device::cuda());
    EXPECT_EQ(std::memcmp(first.y.data(), second.y.data(), first.y.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(first.grad_x.data(), second.grad_x.data(), first.grad_x.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(first.grad_weight.data(), second.grad_weight.data(), first.grad_weight.size() * 4), 0);
    EXPECT_EQ(std::memcmp(first.grad_bias.data(), second.grad_bias.data(), first.grad_bias.size() * 4), 0);
  }
}

TEST(LinearCuda, EmptyBatch) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  for (GemmEngine engine : {GemmEngine::cublas, GemmEngine::own}) {
    GemmEngineScope scope(engine);
    Tensor x = Tensor::zeros({0, 4}, DType::F32, Device::cuda()).set_requires_grad();
    Tensor w = random_tensor({3, 4}, 1).to(Device::cuda()).set_requires_grad();
    Tensor b = random_tensor({3}, 2).to(Device::cuda()).set_requires_grad();
    Tensor y = linear(x, w, b);
    EXPECT_EQ(y.shape(), (Shape{0, 3}));
    sum(y).backward();
    for (float v : w.grad().to_vector()) EXPECT_EQ(v, 0.0f);
    for (float v : b.grad().to_vector()) EXPECT_EQ(v, 0.0f);
  }
}

// --- GEMM, both engines, against the reference ---------------------------------------

struct GemmCase {
  bool trans_a, trans_b;
  int64_t M, N, K;
  int64_t pad;  // extra columns in every leading dimension
  float alpha, beta;
};

using GemmFunction = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                              int64_t, float, float*, int64_t);

void expect_gemm_matches_reference(GemmFunction gemm, const GemmCase& g, uint64_t seed) {
  const int64_t a_rows = g.trans_a ? g.K : g.M, a_cols = g.trans_a ? g.M : g.K;
  const int64_t b_rows = g.trans_b ? g.N : g.K, b_cols = g.trans_b ? g.K : g.N;
  const int64_t lda = a_cols + g.pad, ldb = b_cols + g.pad, ldc = g.N + g.pad;
  const std::vector<float> a = random_tensor({std::max<int64_t>(1, a_rows * lda)}, seed).to_vector();
  const std::vector<float> b = random_tensor({std::max<int64_t>(1, b_rows * ldb)}, seed + 1).to_vector();
  std::vector<float> c = random_tensor({std::max<int64_t>(1, g.M * ldc)}, seed + 2).to_vector();
  // beta == 0: C must be treated as write-only, so poison it (but not the padding).
  if (g.beta == 0.0f)
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) c[static_cast<std::size_t>(i * ldc + j)] = std::nanf("");

  std::vector<float> expected = c;
  cpu::gemm_reference(g.trans_a, g.trans_b, g.M, g.N, g.K, g.alpha, a.data(), lda, b.data(), ldb, g.beta,
                      expected.data(), ldc);
  std::vector<float> magnitude = absolute(c);
  if (g.beta == 0.0f) std::fill(magnitude.begin(), magnitude.end(), 0.0f);
  const std::vector<float> abs_a = absolute(a), abs_b = absolute(b);
  cpu::gemm_reference(g.trans_a, g.trans_b, g.M, g.N, g.K, std::fabs(g.alpha), abs_a.data(), lda, abs_b.data(), ldb,
                      std::fabs(g.beta), magnitude.data(), ldc);

  const Device gpu = Device::cuda();
  Tensor a_dev = Tensor::from_vector(a, {static_cast<int64_t>(a.size())}, gpu);
  Tensor b_dev = Tensor::from_vector(b, {static_cast<int64_t>(b.size())}, gpu);
  Tensor c_dev = Tensor::from_vector(c, {static_cast<int64_t>(c.size())}, gpu);
  gemm(g.trans_a, g.trans_b, g.M, g.N, g.K, g.alpha, a_dev.data<float>(), lda, b_dev.data<float>(), ldb, g.beta,
       c_dev.data<float>(), ldc);
  const std::vector<float> got = c_dev.to_vector();
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = g.N; j < ldc; ++j)  // the padding columns are never written
      ASSERT_EQ(std::memcmp(&got[static_cast<std::size_t>(i * ldc + j)], &c[static_cast<std::size_t>(i * ldc + j)],
                            sizeof(float)),
                0)
          << "padding column " << j << " of row " << i << " was written";
  expect_matches(got, expected, magnitude, static_cast<double>(g.K + 1), "C");
}

const std::vector<GemmCase> kGemmCases = {
    {false, false, 70, 129, 33, 0, 1.0f, 0.0f},  {false, true, 70, 129, 33, 3, 1.0f, 1.0f},
    {true, false, 65, 130, 17, 1, 0.5f, -2.0f},  {true, true, 5, 3, 200, 2, -1.5f, 0.0f},
    {false, false, 1, 1, 1, 0, 1.0f, 0.0f},      {false, true, 128, 64, 64, 0, 1.0f, 1.0f},
    {true, false, 64, 64, 128, 0, 1.0f, 1.0f},   {false, false, 3, 4, 0, 1, 1.0f, 0.5f},  // K = 0: C = beta C
    {false, false, 200, 300, 577, 0, 1.0f, 0.0f},
};

std::string describe(const GemmCase& g) {
  return std::string(g.trans_a ? "A^T" : "A") + (g.trans_b ? " B^T" : " B") + " M " + std::to_string(g.M) + " N " +
         std::to_string(g.N) + " K " + std::to_string(g.K) + " pad " + std::to_string(g.pad) + " alpha " +
         std::to_string(g.alpha) + " beta " + std::to_string(g.beta);
}

TEST(GemmCuda, OwnMatchesReference) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  uint64_t seed = 5;
  for (const GemmCase& g : kGemmCases) {
    SCOPED_TRACE("own: " + describe(g));
    expect_gemm_matches_reference(cuda::gemm, g, seed += 3);
  }
}

TEST(GemmCuda, CublasMatchesReference) {
  if (!cuda_available()) GTEST_SKIP() << kNoGpu;
  uint64_t seed = 5;
  for (const GemmCase& g : kGemmCases) {
    SCOPED_TRACE("cublas: " + describe(g));
    expect_gemm_matches_reference(cuda::cublas_gemm, g, seed += 3);
  }
}

}  // namespace
}  // namespace engine

#else  // a CPU-only build

TEST(LinearCuda, SkippedInCpuOnlyBuild) {
  GTEST_SKIP() << "no CUDA device: this build has no CUDA backend (ENGINE_WITH_CUDA off)";
}

#endif
