// batch_norm2d: forward against a hand loop in double (training and eval),
// running-statistic updates (momentum 0.1, unbiased variance) after one and
// two calls, gradients of x, weight and bias in both modes, thread-count
// independence, and the arguments that must be refused.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::expect_close;
using testing::expect_gradients_match;
using testing::random_tensor;

constexpr double kEps = 1e-5;

// Per-channel mean and biased variance of x [N, C, H, W], in double.
struct ChannelStats {
  std::vector<double> mean, biased_var, unbiased_var;
};

ChannelStats channel_stats(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const std::vector<float> v = x.to_vector();
  ChannelStats s;
  for (int64_t c = 0; c < C; ++c) {
    double total = 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) total += v[static_cast<std::size_t>((n * C + c) * HW + i)];
    const double mean = total / static_cast<double>(N * HW);
    double sq = 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const double d = v[static_cast<std::size_t>((n * C + c) * HW + i)] - mean;
        sq += d * d;
      }
    s.mean.push_back(mean);
    s.biased_var.push_back(sq / static_cast<double>(N * HW));
    s.unbiased_var.push_back(sq / static_cast<double>(N * HW - 1));
  }
  return s;
}

// y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c], in double.
std::vector<float> normalise_by_hand(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var,
                                     const Tensor& weight, const Tensor& bias) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const std::vector<float> v = x.to_vector(), w = weight.to_vector(), b = bias.to_vector();
  std::vector<float> y(v.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        const std::size_t at = static_cast<std::size_t>((n * C + c) * HW + i);
        const auto cc = static_cast<std::size_t>(c);
        y[at] = static_cast<float>((v[at] - mean[cc]) / std::sqrt(var[cc] + kEps) * w[cc] + b[cc]);
      }
  return y;
}

std::vector<double> as_double(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  return {v.begin(), v.end()};
}

// x [3, 4, 5, 6] with per-channel offsets and spreads, so that every channel
// has its own, decent variance.
Tensor spread_input(uint64_t seed) {
  Tensor x = random_tensor({3, 4, 5, 6}, seed, -2.0f, 2.0f);
  std::vector<float> v = x.to_vector();
  for (std::size_t i = 0; i < v.size(); ++i) {
    const int64_t c = static_cast<int64_t>(i / 30) % 4;
    v[i] = v[i] * (0.5f + 0.5f * static_cast<float>(c)) + static_cast<float>(c) - 1.5f;
  }
  return Tensor::from_vector(v, x.shape());
}

TEST(BatchNorm2d, TrainingForwardMatchesHandLoop) {
  Tensor x = spread_input(1);
  Tensor weight = random_tensor({4}, 2, 0.5f, 1.5f), bias = random_tensor({4}, 3);
  Tensor running_mean = Tensor::zeros({4}), running_var = Tensor::ones({4});
  Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, /*training=*/true);
  const ChannelStats s = channel_stats(x);
  EXPECT_EQ(y.shape(), x.shape());
  expect_close(y, normalise_by_hand(x, s.mean, s.biased_var, weight, bias), 1e-5, 1e-5, "train y");
}

TEST(BatchNorm2d, SmallExampleByHand) {
  // One channel holding 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased 5/3.
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 1, 1, 2});
  Tensor weight = Tensor::full({1}, 2.0f), bias = Tensor::full({1}, 0.5f);
  Tensor running_mean = Tensor::zeros({1}), running_var = Tensor::ones({1});
  Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, true);
  const double inv_std = 1.0 / std::sqrt(1.25 + kEps);
  std::vector<float> expected;
  for (double v : {1.0, 2.0, 3.0, 4.0}) expected.push_back(static_cast<float>((v - 2.5) * inv_std * 2.0 + 0.5));
  expect_close(y, expected, 1e-6, 1e-6, "y");
  EXPECT_NEAR(running_mean.item(), 0.1 * 2.5, 1e-7);
  EXPECT_NEAR(running_var.item(), 0.9 * 1.0 + 0.1 * (5.0 / 3.0), 1e-6);  // unbiased, not 1.25
}

TEST(BatchNorm2d, LargeMeanDoesNotCancel) {
  // 10000 + {0, 1, 2, 3}: exact in float; E[x^2] - E[x]^2 in float would
  // lose every digit of the variance. The two-pass scheme keeps them.
  Tensor x = Tensor::from_vector({10000, 10001, 10002, 10003}, {1, 1, 2, 2});
  Tensor weight = Tensor::ones({1}), bias = Tensor::zeros({1});
  Tensor running_mean = Tensor::zeros({1}), running_var = Tensor::ones({1});
  Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, true);
  const double inv_std = 1.0 / std::sqrt(1.25 + kEps);
  expect_close(y, {static_cast<float>(-1.5 * inv_std), static_cast<float>(-0.5 * inv_std),
                   static_cast<float>(0.5 * inv_std), static_cast<float>(1.5 * inv_std)},
               1e-6, 1e-6, "y");
  EXPECT_NEAR(running_var.item(), 0.9 + 0.1 * (5.0 / 3.0), 1e-6);
}

TEST(BatchNorm2d, RunningStatsAfterOneAndTwoCalls) {
  Tensor x1 = spread_input(4), x2 = spread_input(5);
  Tensor weight = Tensor::ones({4}), bias = Tensor::zeros({4});
  Tensor running_mean = Tensor::from_vector({0.5f, -0.25f, 0.0f, 2.0f}, {4});
  Tensor running_var = Tensor::from_vector({1.0f, 2.0f, 0.5f, 3.0f}, {4});
  std::vector<double> expected_mean = as_double(running_mean), expected_var = as_double(running_var);

  for (const Tensor& x : {x1, x2}) {
    batch_norm2d(x, weight, bias, running_mean, running_var, true);
    const ChannelStats s = channel_stats(x);
    for (std::size_t c = 0; c < 4; ++c) {
      expected_mean[c] = 0.9 * expected_mean[c] + 0.1 * s.mean[c];
      expected_var[c] = 0.9 * expected_var[c] + 0.1 * s.unbiased_var[c];  // n / (n - 1), n = 90
    }
    std::vector<float> mean_f(expected_mean.begin(), expected_mean.end());
    std::vector<float> var_f(expected_var.begin(), expected_var.end());
    expect_close(running_mean, mean_f, 1e-6, 1e-6, "running_mean");
    expect_close(running_var, var_f, 1e-6, 1e-6, "running_var");
  }
}

TEST(BatchNorm2d, MomentumArgument) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 1, 1, 2});
  Tensor weight = Tensor::ones({1}), bias = Tensor::zeros({1});
  Tensor running_mean = Tensor::full({1}, 1.0f), running_var = Tensor::ones({1});
  batch_norm2d(x, weight, bias, running_mean, running_var, true, /*momentum=*/0.5);
  EXPECT_NEAR(running_mean.item(), 0.5 * 1.0 + 0.5 * 2.5, 1e-7);
  EXPECT_NEAR(running_var.item(), 0.5 * 1.0 + 0.5 * (5.0 / 3.0), 1e-6);
}

TEST(BatchNorm2d, EvalUsesRunningStatsAndLeavesThem) {
  Tensor x = spread_input(6);
  Tensor weight = random_tensor({4}, 7, 0.5f, 1.5f), bias = random_tensor({4}, 8);
  Tensor running_mean = Tensor::from_vector({0.5f, -0.25f, 0.0f, 2.0f}, {4});
  Tensor running_var = Tensor::from_vector({1.0f, 2.0f, 0.5f, 3.0f}, {4});
  Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, /*training=*/false);
  expect_close(y, normalise_by_hand(x, {0.5, -0.25, 0.0, 2.0}, {1.0, 2.0, 0.5, 3.0}, weight, bias), 1e-5, 1e-5,
               "eval y");
  expect_close(running_mean, {0.5f, -0.25f, 0.0f, 2.0f}, 0, 0, "running_mean unchanged");
  expect_close(running_var, {1.0f, 2.0f, 0.5f, 3.0f}, 0, 0, "running_var unchanged");
  // One value per channel is fine in eval mode.
  Tensor one = batch_norm2d(Tensor::full({1, 4, 1, 1}, 2.0f), weight, bias, running_mean, running_var, false);
  EXPECT_EQ(one.shape(), (Shape{1, 4, 1, 1}));
}

// BN in training mode is invariant to shifting and scaling each channel of x,
// so dL/dx is the part of g = dL/dy * weight orthogonal to 1 and xhat, scaled
// by inv_std: a difference of terms of similar size, and a wrong formula is
// often off by only a few percent. With a decent variance per channel
// (spreads 0.5 .. 2, m = 90 values) and step 1e-2, the finite differences
// agree with the exact gradient to < 1e-4 (measured); the tolerances
// atol 5e-4, rtol 5e-3 are tighter than the defaults so that small formula
// errors (a dropped mean term, a biased/unbiased mix-up) cannot hide.
TEST(BatchNorm2d, TrainingGradients) {
  Tensor x = spread_input(9);
  Tensor weight = random_tensor({4}, 10, 0.5f, 1.5f), bias = random_tensor({4}, 11);
  x.set_requires_grad();
  weight.set_requires_grad();
  bias.set_requires_grad();
  Tensor running_mean = Tensor::zeros({4}), running_var = Tensor::ones({4});
  testing::GradCheckOptions options;
  options.max_elements_per_input = 96;
  options.atol = 5e-4;
  options.rtol = 5e-3;
  expect_gradients_match(
      [&](const std::vector<Tensor>& in) {
        return batch_norm2d(in[0], in[1], in[2], running_mean, running_var, /*training=*/true);
      },
      {x, weight, bias}, options);
}

TEST(BatchNorm2d, TrainingGradientOfXSumsToZero) {
  // The mean of every channel is subtracted, so moving all of a channel's
  // values together changes nothing: each channel's dL/dx sums to 0.
  Tensor x = spread_input(12);
  x.set_requires_grad();
  Tensor weight = random_tensor({4}, 13, 0.5f, 1.5f), bias = Tensor::zeros({4});
  Tensor running_mean = Tensor::zeros({4}), running_var = Tensor::ones({4});
  Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, true);
  sum(mul(y, random_tensor(y.shape(), 14))).backward();
  const std::vector<float> g = x.grad().to_vector();
  for (int64_t c = 0; c < 4; ++c) {
    double s = 0.0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t i = 0; i < 30; ++i) s += g[static_cast<std::size_t>((n * 4 + c) * 30 + i)];
    EXPECT_NEAR(s, 0.0, 1e-4) << "channel " << c;
  }
}

TEST(BatchNorm2d, EvalGradients) {
  // Eval mode is affine in x: finite differences are exact up to rounding.
  Tensor x = spread_input(15);
  Tensor weight = random_tensor({4}, 16, 0.5f, 1.5f), bias = random_tensor({4}, 17);
  x.set_requires_grad();
  weight.set_requires_grad();
  bias.set_requires_grad();
  Tensor running_mean = Tensor::from_vector({0.5f, -0.25f, 0.0f, 2.0f}, {4});
  Tensor running_var = Tensor::from_vector({1.0f, 2.0f, 0.5f, 3.0f}, {4});
  expect_gradients_match(
      [&](const std::vector<Tensor>& in) {
        return batch_norm2d(in[0], in[1], in[2], running_mean, running_var, /*training=*/false);
      },
      {x, weight, bias});
}

TEST(BatchNorm2d, SameBitsWhateverTheThreadCount) {
  // Large enough for the parallel paths; forward, running stats and all
  // three gradients must not depend on how the work was split.
  Tensor x = random_tensor({8, 16, 24, 24}, 18, -3.0f, 3.0f);
  Tensor weight = random_tensor({16}, 19, 0.5f, 1.5f), bias = random_tensor({16}, 20);
  Tensor probe = random_tensor(x.shape(), 21);
  auto run = [&](int threads) {
    const int previous = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor xi = x.clone(), wi = weight.clone(), bi = bias.clone();
    xi.set_requires_grad();
    wi.set_requires_grad();
    bi.set_requires_grad();
    Tensor running_mean = Tensor::zeros({16}), running_var = Tensor::ones({16});
    Tensor y = batch_norm2d(xi, wi, bi, running_mean, running_var, true);
    sum(mul(y, probe)).backward();
    omp_set_num_threads(previous);
    std::vector<std::vector<float>> out{y.to_vector(), running_mean.to_vector(), running_var.to_vector(),
                                        xi.grad().to_vector(), wi.grad().to_vector(), bi.grad().to_vector()};
    return out;
  };
  const auto one = run(1), three = run(3);
  for (std::size_t k = 0; k < one.size(); ++k) EXPECT_EQ(one[k], three[k]) << "output " << k;
}

TEST(BatchNorm2d, TrainingNeedsMoreThanOneValuePerChannel) {
  Tensor weight = Tensor::ones({3}), bias = Tensor::zeros({3});
  Tensor running_mean = Tensor::zeros({3}), running_var = Tensor::ones({3});
  try {
    batch_norm2d(Tensor::ones({1, 3, 1, 1}), weight, bias, running_mean, running_var, true);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Expected more than 1 value per channel when training"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[1, 3, 1, 1]"), std::string::npos) << msg;
  }
  // Untouched by the refused call.
  expect_close(running_mean, {0, 0, 0}, 0, 0, "running_mean");
}

TEST(BatchNorm2d, RejectsBadShapes) {
  Tensor weight = Tensor::ones({3}), bias = Tensor::zeros({3});
  Tensor running_mean = Tensor::zeros({3}), running_var = Tensor::ones({3});
  Tensor x = Tensor::ones({2, 3, 4, 4});
  auto expect_message = [](auto&& call, std::vector<std::string> parts) {
    try {
      call();
      FAIL() << "expected an error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      for (const std::string& part : parts) EXPECT_NE(msg.find(part), std::string::npos) << msg;
    }
  };
  Tensor wrong_mean = Tensor::zeros({4});
  expect_message([&] { batch_norm2d(x, weight, bias, wrong_mean, running_var, true); },
                 {"batch_norm2d", "'running_mean'", "[3]", "[4]"});
  Tensor wrong_var = Tensor::zeros({3, 1});
  expect_message([&] { batch_norm2d(x, weight, bias, running_mean, wrong_var, false); },
                 {"batch_norm2d", "'running_var'", "[3]", "[3, 1]"});
  expect_message([&] { batch_norm2d(Tensor::ones({2, 3, 4}), weight, bias, running_mean, running_var, true); },
                 {"batch_norm2d", "'x'", "4-d", "[N, C, H, W]", "[2, 3, 4]"});
  expect_message([&] { batch_norm2d(x, Tensor::ones({2}), bias, running_mean, running_var, true); },
                 {"batch_norm2d", "'weight'", "[3]", "[2]"});
  expect_message([&] { batch_norm2d(x, weight, Tensor(), running_mean, running_var, true); },
                 {"batch_norm2d", "'bias'", "undefined"});
  expect_message([&] { batch_norm2d(x, weight, bias, running_mean, running_var, true, 1.5); },
                 {"batch_norm2d", "'momentum'", "1.5"});
}

}  // namespace
}  // namespace engine
