// The fast CPU kernels against their references.
//
// kernels/cpu/fast_math.h: the vectorisable erf and exp against the exact
// functions (std::erf, std::exp in double) in ulps over dense sweeps of the
// float range, their special values, the fast GELU against the erff-based
// reference (kernels/common/gelu_math.h), and the CPU GELU kernels: the same
// bits as the scalar formula for every element (vector body and remainder,
// any thread count), += in the backward, and agreement with the reference
// kernels.
//
// kernels/cpu/batchnorm.h: the vectorised statistics and backward against
// the one-value-at-a-time reference kernels, on plane sizes that are and are
// not multiples of the 8 lanes, with a large mean (cancellation), in both
// modes and with null gradients; thread-count independence. (The op-level
// BatchNorm tests are in batchnorm_test.cpp.)
//
// The exhaustive check over all 2^32 floats takes minutes on 2 cores, so it
// is DISABLED_; run it with
//   build/tests/engine_tests --gtest_filter='FastMath.DISABLED_*' --gtest_also_run_disabled_tests
#include <gtest/gtest.h>
#include <omp.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/common/gelu_math.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/fast_math.h"

namespace engine {
namespace {

// The float ulp at the exact value e: 2^(exponent of e - 23) for normal
// results, 2^-149 (the subnormal spacing) below 2^-126.
double float_ulp(double e) {
  e = std::fabs(e);
  if (e < 0x1p-126) return 0x1p-149;
  int exponent = 0;
  std::frexp(e, &exponent);  // e = m 2^exponent, m in [0.5, 1)
  return std::ldexp(1.0, exponent - 24);
}

double ulp_error(float approx, double exact) { return std::fabs(static_cast<double>(approx) - exact) / float_ulp(exact); }

struct Worst {
  double ulps = 0.0;
  float at = 0.0f;
};

// Max ulp error of fast::erf against std::erf (double) over every stride-th
// float bit pattern from first to last (NaNs skipped: checked separately).
Worst erf_sweep(uint64_t first, uint64_t last, uint64_t stride) {
  Worst worst;
#pragma omp parallel
  {
    Worst mine;
#pragma omp for schedule(dynamic, 4096)
    for (int64_t k = 0; k <= static_cast<int64_t>((last - first) / stride); ++k) {
      const float x = std::bit_cast<float>(static_cast<uint32_t>(first + static_cast<uint64_t>(k) * stride));
      if (std::isnan(x)) continue;
      const double e = ulp_error(cpu::fast::erf(x), std::erf(static_cast<double>(x)));
      if (e > mine.ulps) mine = {e, x};
    }
#pragma omp critical
    if (mine.ulps > worst.ulps) worst = mine;
  }
  return worst;
}

// The same for fast::exp over the arguments whose result is a normal float
// (below that it flushes to 0: checked separately).
Worst exp_sweep(uint64_t stride) {
  Worst worst;
#pragma omp parallel
  {
    Worst mine;
#pragma omp for schedule(dynamic, 4096)
    for (int64_t k = 0; k <= static_cast<int64_t>(0xFFFFFFFFull / stride); ++k) {
      const float y = std::bit_cast<float>(static_cast<uint32_t>(static_cast<uint64_t>(k) * stride));
      if (!(y >= -87.3365f && y <= 88.0f)) continue;  // also skips NaNs
      const double e = ulp_error(cpu::fast::exp(y), std::exp(static_cast<double>(y)));
      if (e > mine.ulps) mine = {e, y};
    }
#pragma omp critical
    if (mine.ulps > worst.ulps) worst = mine;
  }
  return worst;
}

constexpr uint32_t kPositiveInfinityBits = 0x7F800000u;
constexpr uint32_t kNegativeZeroBits = 0x80000000u;

// Bounds: the exhaustive maxima (0.997 ulp for erf, 1.014 for exp; see
// fast_math.h) rounded up a little, so that any change to the coefficients or
// the evaluation order that loses accuracy shows here.
constexpr double kErfMaxUlps = 1.0;
constexpr double kExpMaxUlps = 1.05;

TEST(FastMath, ErfWithinOneUlpOverASweepOfAllFloats) {
  // Every 257th bit pattern: ~16.7 million floats of every sign and binade,
  // subnormals and infinities included.
  const Worst worst = erf_sweep(0, 0xFFFFFFFFull, 257);
  RecordProperty("erf_max_ulp", std::to_string(worst.ulps));
  EXPECT_LE(worst.ulps, kErfMaxUlps) << "worst at x = " << worst.at;
}

TEST(FastMath, ErfWithinOneUlpDenselyWhereItCurves) {
  // Every 3rd float in [0.25, 4.5]: the region that sets the error (the
  // switch between the two approximations at 1, the tail up to saturation).
  const Worst worst = erf_sweep(std::bit_cast<uint32_t>(0.25f), std::bit_cast<uint32_t>(4.5f), 3);
  EXPECT_LE(worst.ulps, kErfMaxUlps) << "worst at x = " << worst.at;
}

TEST(FastMath, DISABLED_ErfExhaustive) {
  const Worst worst = erf_sweep(0, 0xFFFFFFFFull, 1);
  std::printf("fast::erf over all 2^32 floats: max %.4f ulp at x = %.9g\n", worst.ulps, worst.at);
  EXPECT_LE(worst.ulps, kErfMaxUlps) << "worst at x = " << worst.at;
}

TEST(FastMath, DISABLED_ExpExhaustive) {
  const Worst worst = exp_sweep(1);
  std::printf("fast::exp over all floats in [-87.34, 88]: max %.4f ulp at y = %.9g\n", worst.ulps, worst.at);
  EXPECT_LE(worst.ulps, kExpMaxUlps) << "worst at y = " << worst.at;
}

TEST(FastMath, ErfIsOddAndSaturates) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> dist(-6.0f, 6.0f);
  for (int k = 0; k < 10000; ++k) {
    const float x = dist(gen);
    EXPECT_EQ(cpu::fast::erf(-x), -cpu::fast::erf(x)) << "x = " << x;
  }
  EXPECT_EQ(cpu::fast::erf(4.0f), 1.0f);
  EXPECT_EQ(cpu::fast::erf(1e30f), 1.0f);
  EXPECT_EQ(cpu::fast::erf(-1e30f), -1.0f);
  // erf(x) ~ (2 / sqrt pi) x near 0, down into the subnormals.
  EXPECT_FLOAT_EQ(cpu::fast::erf(1e-20f), 1.1283791671e-20f);
  EXPECT_EQ(cpu::fast::erf(std::numeric_limits<float>::denorm_min()), std::numeric_limits<float>::denorm_min());
}

TEST(FastMath, ErfSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(cpu::fast::erf(inf), 1.0f);
  EXPECT_EQ(cpu::fast::erf(-inf), -1.0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(cpu::fast::erf(0.0f)), 0u);
  EXPECT_EQ(std::bit_cast<uint32_t>(cpu::fast::erf(-0.0f)), kNegativeZeroBits);
  EXPECT_TRUE(std::isnan(cpu::fast::erf(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(cpu::fast::erf(-std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(std::bit_cast<uint32_t>(inf), kPositiveInfinityBits);
}

TEST(FastMath, ExpWithinBoundOverASweep) {
  // Every 61st bit pattern whose exp is a normal float: ~1.2 million arguments.
  const Worst worst = exp_sweep(61);
  EXPECT_LE(worst.ulps, kExpMaxUlps) << "worst at y = " << worst.at;
}

TEST(FastMath, ExpSpecialValuesAndRangeEnds) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(cpu::fast::exp(0.0f), 1.0f);
  EXPECT_EQ(cpu::fast::exp(-0.0f), 1.0f);
  EXPECT_EQ(cpu::fast::exp(-inf), 0.0f);
  EXPECT_EQ(cpu::fast::exp(inf), inf);
  EXPECT_EQ(cpu::fast::exp(-100.0f), 0.0f);  // flushed: expf gives a subnormal 3.7e-44
  EXPECT_EQ(cpu::fast::exp(100.0f), inf);
  EXPECT_TRUE(std::isnan(cpu::fast::exp(std::numeric_limits<float>::quiet_NaN())));
  // At the ends of the covered range, still within the bound.
  for (float y : {-87.3365f, -87.0f, -50.0f, -1e-7f, 1e-7f, 1.0f, 50.0f, 87.9f, 88.0f})
    EXPECT_LE(ulp_error(cpu::fast::exp(y), std::exp(static_cast<double>(y))), kExpMaxUlps) << "y = " << y;
}

// The fast GELU and its derivative against the erff/expf formulas of
// gelu_math.h (the reference the CUDA kernels also use). Both evaluate the
// same expression; they differ by the erf difference (each within 1 ulp of
// the exact erf, so at most 2 ulp of a value below 1 apart: 1.2e-7) times
// 0.5 |x|, plus a rounding of 1 + erf (below 2, ulp 1.2e-7) times 0.5 |x|:
// |difference| <= 1.5e-7 |x| + the result's own rounding. The derivative adds
// the exp difference times |x| phi(x) < 0.25.
TEST(FastMath, GeluMatchesTheErffReference) {
  double worst_forward = 0.0, worst_derivative = 0.0;
  for (float x = -12.0f; x <= 12.0f; x += 1.0f / 1024.0f) {
    const float fast_y = cpu::fast::gelu(x), ref_y = math::gelu(x);
    const double forward_bound = 1.5e-7 * std::fabs(x) + 1.2e-7 * std::fabs(ref_y) + 1e-30;
    worst_forward = std::max(worst_forward, std::fabs(fast_y - ref_y) / forward_bound);
    const float fast_d = cpu::fast::gelu_derivative(x), ref_d = math::gelu_derivative(x);
    const double derivative_bound = 1.5e-7 * std::fabs(x) + 2.4e-7 + 1e-30;
    worst_derivative = std::max(worst_derivative, std::fabs(fast_d - ref_d) / derivative_bound);
  }
  EXPECT_LE(worst_forward, 1.0);
  EXPECT_LE(worst_derivative, 1.0);
  // Far out both give the saturated values exactly.
  for (float x : {-30.0f, -20.0f, 20.0f, 30.0f, 1e10f}) {
    EXPECT_EQ(cpu::fast::gelu(x), math::gelu(x)) << "x = " << x;
    EXPECT_EQ(cpu::fast::gelu_derivative(x), math::gelu_derivative(x)) << "x = " << x;
  }
  EXPECT_EQ(cpu::fast::gelu(0.0f), 0.0f);
  EXPECT_EQ(cpu::fast::gelu_derivative(0.0f), 0.5f);
}

TEST(FastMath, GeluSpecialValuesLikeTheReference) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (float x : {inf, -inf, nan}) {
    const float fast_y = cpu::fast::gelu(x), ref_y = math::gelu(x);
    EXPECT_TRUE(fast_y == ref_y || (std::isnan(fast_y) && std::isnan(ref_y))) << x << ": " << fast_y << " vs " << ref_y;
    const float fast_d = cpu::fast::gelu_derivative(x), ref_d = math::gelu_derivative(x);
    EXPECT_TRUE(fast_d == ref_d || (std::isnan(fast_d) && std::isnan(ref_d))) << x << ": " << fast_d << " vs " << ref_d;
  }
}

std::vector<float> uniform_values(std::size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& value : v) value = dist(gen);
  return v;
}

// The kernels run fast::gelu 8 elements at a time with a scalar remainder,
// split over threads: every element must get exactly the scalar formula's
// bits, wherever it falls (odd lengths; above the parallel threshold with 1
// and 3 threads).
TEST(FastMath, GeluKernelsGiveTheScalarBitsAnywhere) {
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{37}, std::size_t{100003}}) {
    const std::vector<float> x = uniform_values(n, 2, -8.0f, 8.0f), grad_y = uniform_values(n, 3, -1.0f, 1.0f);
    const std::vector<float> grad_x0 = uniform_values(n, 4, -1.0f, 1.0f);
    for (int threads : {1, 3}) {
      const int previous = omp_get_max_threads();
      omp_set_num_threads(threads);
      std::vector<float> y(n), grad_x = grad_x0;
      cpu::gelu_forward(x.data(), y.data(), static_cast<int64_t>(n));
      cpu::gelu_backward(x.data(), grad_y.data(), grad_x.data(), static_cast<int64_t>(n));
      omp_set_num_threads(previous);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(cpu::fast::gelu(x[i])))
            << "n = " << n << ", threads " << threads << ", i = " << i;
        // Backward writes grad_y gelu'(x) over whatever grad_x held.
        const float expected = grad_y[i] * cpu::fast::gelu_derivative(x[i]);
        ASSERT_EQ(std::bit_cast<uint32_t>(grad_x[i]), std::bit_cast<uint32_t>(expected))
            << "n = " << n << ", threads " << threads << ", i = " << i;
      }
    }
  }
}

TEST(FastMath, GeluKernelsMatchTheReferenceKernels) {
  const std::size_t n = 70001;
  const std::vector<float> x = uniform_values(n, 5, -6.0f, 6.0f), grad_y = uniform_values(n, 6, -1.0f, 1.0f);
  std::vector<float> y(n), y_ref(n), grad_x(n, 0.25f), grad_x_ref(n, 0.25f);
  cpu::gelu_forward(x.data(), y.data(), static_cast<int64_t>(n));
  cpu::gelu_forward_reference(x.data(), y_ref.data(), static_cast<int64_t>(n));
  cpu::gelu_backward(x.data(), grad_y.data(), grad_x.data(), static_cast<int64_t>(n));
  cpu::gelu_backward_reference(x.data(), grad_y.data(), grad_x_ref.data(), static_cast<int64_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_NEAR(y[i], y_ref[i], 1.5e-7 * std::fabs(x[i]) + 1.2e-7 * std::fabs(y_ref[i])) << "x = " << x[i];
    ASSERT_NEAR(grad_x[i], grad_x_ref[i], 1.5e-7 * std::fabs(x[i]) + 3.6e-7) << "x = " << x[i];
  }
}

// x [N, C, HW] with channel c around offset + c and spread 0.5 + c / 2.
std::vector<float> batchnorm_input(int64_t batch, int64_t channels, int64_t spatial, float offset, uint32_t seed) {
  std::vector<float> x = uniform_values(static_cast<std::size_t>(batch * channels * spatial), seed, -1.0f, 1.0f);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto c = static_cast<float>((static_cast<int64_t>(i) / spatial) % channels);
    x[i] = x[i] * (0.5f + 0.5f * c) + offset + c;
  }
  return x;
}

// |a - b| <= ulps * ulp(b), elementwise.
void expect_within_ulps(const std::vector<float>& a, const std::vector<float>& b, double ulps, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i)
    EXPECT_LE(ulp_error(a[i], b[i]), ulps) << what << " [" << i << "]: " << a[i] << " vs " << b[i];
}

struct BatchNormShape {
  int64_t batch, channels, spatial;
};
// Plane sizes below, at, and not multiples of the 8 lanes; one value per plane.
const std::vector<BatchNormShape> kBatchNormShapes{{2, 3, 1}, {3, 2, 7}, {2, 3, 8}, {3, 3, 13}, {4, 5, 49},
                                                   {2, 4, 784}, {1, 2, 1001}};

TEST(FastBatchNorm, StatisticsMatchTheReference) {
  // Both sum in double: the float results agree to an ulp or two (the order
  // of the double additions differs). Offset 1000 with spreads ~1: the
  // variance must survive the large mean.
  for (const BatchNormShape& s : kBatchNormShapes)
    for (float offset : {0.0f, 1000.0f}) {
      const std::vector<float> x = batchnorm_input(s.batch, s.channels, s.spatial, offset, 7);
      const std::size_t C = static_cast<std::size_t>(s.channels);
      std::vector<float> mean(C), inv_std(C), running_mean(C, 0.5f), running_var(C, 2.0f);
      std::vector<float> mean_ref(C), inv_std_ref(C), running_mean_ref(C, 0.5f), running_var_ref(C, 2.0f);
      cpu::batchnorm_batch_stats(x.data(), s.batch, s.channels, s.spatial, 0.1, 1e-5, mean.data(), inv_std.data(),
                                 running_mean.data(), running_var.data());
      cpu::batchnorm_batch_stats_reference(x.data(), s.batch, s.channels, s.spatial, 0.1, 1e-5, mean_ref.data(),
                                           inv_std_ref.data(), running_mean_ref.data(), running_var_ref.data());
      const std::string where = "shape [" + std::to_string(s.batch) + ", " + std::to_string(s.channels) + ", " +
                                std::to_string(s.spatial) + "], offset " + std::to_string(offset);
      expect_within_ulps(mean, mean_ref, 1.0, "mean, " + where);
      expect_within_ulps(inv_std, inv_std_ref, 2.0, "inv_std, " + where);
      expect_within_ulps(running_mean, running_mean_ref, 1.0, "running_mean, " + where);
      expect_within_ulps(running_var, running_var_ref, 2.0, "running_var, " + where);
    }
}

TEST(FastBatchNorm, StatisticsOfAConstantPlaneAreExact) {
  // Every value 3: mean exactly 3, variance exactly 0, inv_std = 1 / sqrt(eps).
  const std::vector<float> x(2 * 3 * 13, 3.0f);
  std::vector<float> mean(3), inv_std(3), running_mean(3, 0.0f), running_var(3, 1.0f);
  cpu::batchnorm_batch_stats(x.data(), 2, 3, 13, 0.1, 1e-5, mean.data(), inv_std.data(), running_mean.data(),
                             running_var.data());
  for (std::size_t c = 0; c < 3; ++c) {
    EXPECT_EQ(mean[c], 3.0f);
    EXPECT_EQ(inv_std[c], static_cast<float>(1.0 / std::sqrt(1e-5)));
    EXPECT_EQ(running_var[c], 0.9f);
  }
}

TEST(FastBatchNorm, BackwardMatchesTheReference) {
  for (const BatchNormShape& s : kBatchNormShapes)
    for (bool training : {true, false}) {
      const std::size_t n = static_cast<std::size_t>(s.batch * s.channels * s.spatial), C = static_cast<std::size_t>(s.channels);
      const std::vector<float> x = batchnorm_input(s.batch, s.channels, s.spatial, 0.5f, 8);
      const std::vector<float> grad_y = uniform_values(n, 9, -1.0f, 1.0f);
      const std::vector<float> weight = uniform_values(C, 10, 0.5f, 1.5f), mean = uniform_values(C, 11, 0.0f, 1.0f);
      const std::vector<float> inv_std = uniform_values(C, 12, 0.5f, 2.0f);
      // Accumulation: every gradient starts non-zero.
      std::vector<float> grad_x(n, 0.25f), grad_weight(C, -0.5f), grad_bias(C, 0.75f);
      std::vector<float> grad_x_ref = grad_x, grad_weight_ref = grad_weight, grad_bias_ref = grad_bias;
      cpu::batchnorm_backward(x.data(), grad_y.data(), mean.data(), inv_std.data(), weight.data(), training,
                              grad_x.data(), grad_weight.data(), grad_bias.data(), s.batch, s.channels, s.spatial);
      cpu::batchnorm_backward_reference(x.data(), grad_y.data(), mean.data(), inv_std.data(), weight.data(),
                                        training, grad_x_ref.data(), grad_weight_ref.data(), grad_bias_ref.data(),
                                        s.batch, s.channels, s.spatial);
      const std::string where = std::string(training ? "training" : "eval") + ", spatial " + std::to_string(s.spatial);
      // Sums in double in both: a few ulps of the result at most (grad_x is a
      // difference of terms up to ~|g| in size: compare with that scale).
      for (std::size_t i = 0; i < n; ++i)
        EXPECT_NEAR(grad_x[i], grad_x_ref[i], 1e-6) << "grad_x, " << where << " [" << i << "]";
      expect_within_ulps(grad_weight, grad_weight_ref, 2.0, "grad_weight, " + where);
      expect_within_ulps(grad_bias, grad_bias_ref, 2.0, "grad_bias, " + where);

      // Null gradients: each alone gives the same as with all three.
      std::vector<float> only_weight(C, -0.5f), only_x(n, 0.25f);
      cpu::batchnorm_backward(x.data(), grad_y.data(), mean.data(), inv_std.data(), weight.data(), training, nullptr,
                              only_weight.data(), nullptr, s.batch, s.channels, s.spatial);
      cpu::batchnorm_backward(x.data(), grad_y.data(), mean.data(), inv_std.data(), weight.data(), training,
                              only_x.data(), nullptr, nullptr, s.batch, s.channels, s.spatial);
      EXPECT_EQ(only_weight, grad_weight) << where;
      EXPECT_EQ(only_x, grad_x) << where;
    }
}

TEST(FastBatchNorm, SameBitsWhateverTheThreadCount) {
  // Planes of 143 values (17 groups of 8 and a tail of 7), above the
  // parallel threshold: 1 and 3 threads must agree bit for bit.
  const int64_t N = 16, C = 24, HW = 143;
  const std::size_t n = static_cast<std::size_t>(N * C * HW);
  const std::vector<float> x = batchnorm_input(N, C, HW, 2.0f, 13), grad_y = uniform_values(n, 14, -1.0f, 1.0f);
  const std::vector<float> weight = uniform_values(static_cast<std::size_t>(C), 15, 0.5f, 1.5f);
  auto run = [&](int threads) {
    const int previous = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> mean(C), inv_std(C), running_mean(C, 0.0f), running_var(C, 1.0f);
    std::vector<float> grad_x(n, 0.0f), grad_weight(C, 0.0f), grad_bias(C, 0.0f);
    cpu::batchnorm_batch_stats(x.data(), N, C, HW, 0.1, 1e-5, mean.data(), inv_std.data(), running_mean.data(),
                               running_var.data());
    cpu::batchnorm_backward(x.data(), grad_y.data(), mean.data(), inv_std.data(), weight.data(), true,
                            grad_x.data(), grad_weight.data(), grad_bias.data(), N, C, HW);
    omp_set_num_threads(previous);
    return std::vector<std::vector<float>>{mean, inv_std, running_mean, running_var, grad_x, grad_weight, grad_bias};
  };
  const auto one = run(1), three = run(3);
  for (std::size_t k = 0; k < one.size(); ++k) EXPECT_EQ(one[k], three[k]) << "output " << k;
}

}  // namespace
}  // namespace engine
