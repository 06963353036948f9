// The layers: shapes and names of their tensors, forward == the op call,
// BatchNorm2d's modes and counter, and PyTorch's default initialisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"
#include "layers/init.h"
#include "layers/layers.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::contains;
using testing::error_of;
using testing::keys_of;
using testing::random_tensor;

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (float v : t.to_vector()) m = std::max(m, std::fabs(static_cast<double>(v)));
  return m;
}

// --- Forward == op call -------------------------------------------------------------------

TEST(Layers, Conv2dForwardIsTheOp) {
  Conv2d conv(3, 5, 3, /*stride=*/2, /*padding=*/1);
  EXPECT_EQ(keys_of(conv.state_dict()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(conv.weight.shape(), (Shape{5, 3, 3, 3}));
  EXPECT_EQ(conv.bias.shape(), Shape{5});
  const Tensor x = random_tensor({2, 3, 7, 7}, 1);
  const Tensor y = conv.forward(x);
  EXPECT_EQ(y.shape(), (Shape{2, 5, 4, 4}));
  EXPECT_EQ(y.to_vector(), conv2d(x, conv.weight, conv.bias, 2, 1).to_vector());
}

TEST(Layers, Conv2dWithoutBias) {
  Conv2d conv(2, 4, 1, 1, 0, /*bias=*/false);
  EXPECT_FALSE(conv.bias.defined());
  EXPECT_EQ(keys_of(conv.state_dict()), std::vector<std::string>{"weight"});
  const Tensor x = random_tensor({1, 2, 3, 3}, 2);
  EXPECT_EQ(conv.forward(x).to_vector(), conv2d(x, conv.weight, Tensor(), 1, 0).to_vector());
}

TEST(Layers, ConvTranspose2dForwardIsTheOp) {
  ConvTranspose2d up(4, 2, 4, /*stride=*/2, /*padding=*/1, /*output_padding=*/1);
  EXPECT_EQ(up.weight.shape(), (Shape{4, 2, 4, 4}));  // [in, out, k, k]
  EXPECT_EQ(up.bias.shape(), Shape{2});
  const Tensor x = random_tensor({2, 4, 3, 3}, 3);
  const Tensor y = up.forward(x);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 7, 7}));  // (3-1)*2 - 2 + 4 + 1
  EXPECT_EQ(y.to_vector(), conv_transpose2d(x, up.weight, up.bias, 2, 1, 1).to_vector());
}

TEST(Layers, LinearForwardIsTheOp) {
  Linear fc(6, 3);
  EXPECT_EQ(fc.weight.shape(), (Shape{3, 6}));
  EXPECT_EQ(fc.bias.shape(), Shape{3});
  const Tensor x = random_tensor({4, 6}, 4);
  EXPECT_EQ(fc.forward(x).to_vector(), linear(x, fc.weight, fc.bias).to_vector());
  Linear no_bias(6, 3, false);
  EXPECT_EQ(keys_of(no_bias.state_dict()), std::vector<std::string>{"weight"});
}

TEST(Layers, GeluAndAvgPoolForwardAreTheOps) {
  const Tensor x = random_tensor({2, 3, 8, 8}, 5, -3.0f, 3.0f);
  GELU act;
  EXPECT_TRUE(act.state_dict().empty());
  EXPECT_EQ(act.forward(x).to_vector(), gelu(x).to_vector());
  AvgPool2d pool(2);  // stride 0 -> stride = kernel
  EXPECT_EQ(pool.stride, 2);
  EXPECT_EQ(pool.forward(x).shape(), (Shape{2, 3, 4, 4}));
  EXPECT_EQ(pool.forward(x).to_vector(), avg_pool2d(x, 2, 2).to_vector());
  AvgPool2d overlapping(3, 1);
  EXPECT_EQ(overlapping.forward(x).to_vector(), avg_pool2d(x, 3, 1).to_vector());
  // Average of a 2x2 window, by hand, for one output element.
  const std::vector<float> xv = x.to_vector(), yv = pool.forward(x).to_vector();
  EXPECT_NEAR(yv[0], (xv[0] + xv[1] + xv[8] + xv[9]) / 4.0f, 1e-6f);
}

TEST(Layers, SequentialChainsItsChildren) {
  Generator gen(9);
  auto conv = std::make_shared<Conv2d>(1, 3, 3, 1, 1, true, gen);
  auto act = std::make_shared<GELU>();
  auto pool = std::make_shared<AvgPool2d>(2);
  Sequential seq({conv, act, pool});
  EXPECT_EQ(seq.size(), 3u);
  EXPECT_EQ(seq[1], act);
  EXPECT_EQ(keys_of(seq.state_dict()), (std::vector<std::string>{"0.weight", "0.bias"}));
  const Tensor x = random_tensor({2, 1, 6, 6}, 6);
  EXPECT_EQ(seq.forward(x).to_vector(), avg_pool2d(gelu(conv2d(x, conv->weight, conv->bias, 1, 1)), 2, 2).to_vector());
  EXPECT_TRUE(contains(error_of([&] { seq[3]; }), "index 3 out of range"));
  // An empty Sequential is the identity.
  Sequential empty;
  EXPECT_EQ(empty.forward(x).to_vector(), x.to_vector());
}

TEST(Layers, ParametersReceiveGradients) {
  Conv2d conv(2, 3, 3, 1, 1);
  const Tensor x = random_tensor({2, 2, 5, 5}, 12);
  sum(conv.forward(x)).backward();
  ASSERT_TRUE(conv.weight.grad().defined());
  ASSERT_TRUE(conv.bias.grad().defined());
  // d sum(y) / d bias_c = number of output positions per channel = N * H * W.
  testing::expect_close(conv.bias.grad(), std::vector<float>(3, 2 * 5 * 5), 1e-4, 1e-5, "bias grad");
}

TEST(Layers, ConstructorsRejectBadArguments) {
  EXPECT_TRUE(contains(error_of([] { Conv2d(0, 4, 3); }), "Conv2d: in_channels must be positive, got 0"));
  EXPECT_TRUE(contains(error_of([] { Conv2d(1, 4, 3, 0); }), "Conv2d: stride must be positive, got 0"));
  EXPECT_TRUE(contains(error_of([] { ConvTranspose2d(1, 4, 3, 2, 1, 2); }),
                       "ConvTranspose2d: output_padding must be in [0, stride = 2), got 2"));
  EXPECT_TRUE(contains(error_of([] { BatchNorm2d(0); }), "BatchNorm2d: num_features must be positive"));
  EXPECT_TRUE(contains(error_of([] { Linear(3, -1); }), "Linear: out_features must be positive, got -1"));
  EXPECT_TRUE(contains(error_of([] { AvgPool2d(0); }), "AvgPool2d: kernel_size must be positive"));
}

TEST(Layers, ForwardErrorsComeFromTheOp) {
  Conv2d conv(3, 4, 3);
  const std::string msg = error_of([&] { conv.forward(Tensor::zeros({1, 2, 5, 5})); });
  EXPECT_TRUE(contains(msg, "conv2d")) << msg;
}

// --- BatchNorm2d ------------------------------------------------------------------------------

TEST(BatchNorm2dLayer, NamesShapesAndInitialValues) {
  BatchNorm2d bn(3);
  EXPECT_EQ(keys_of(bn.state_dict()), (std::vector<std::string>{"weight", "bias", "running_mean", "running_var",
                                                                 "num_batches_tracked"}));
  EXPECT_EQ(keys_of(bn.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(bn.weight.to_vector(), std::vector<float>(3, 1.0f));
  EXPECT_EQ(bn.bias.to_vector(), std::vector<float>(3, 0.0f));
  EXPECT_EQ(bn.running_mean.to_vector(), std::vector<float>(3, 0.0f));
  EXPECT_EQ(bn.running_var.to_vector(), std::vector<float>(3, 1.0f));
  EXPECT_EQ(bn.num_batches_tracked.dtype(), DType::I64);
  EXPECT_EQ(bn.num_batches_tracked.shape(), Shape{});  // a 0-d tensor, as PyTorch's
  EXPECT_EQ(bn.num_batches_tracked.to_vector_i64(), std::vector<int64_t>{0});
}

TEST(BatchNorm2dLayer, TrainModeUsesBatchStatsUpdatesRunningStatsAndCounts) {
  BatchNorm2d bn(3, 1e-5, 0.2);
  bn.weight.fill_(1.5f);
  bn.bias.fill_(-0.5f);
  for (int64_t step = 1; step <= 3; ++step) {
    const Tensor x = random_tensor({4, 3, 5, 5}, 20 + step, -2.0f, 3.0f);
    // The op on copies of the running stats is the reference.
    Tensor mean_copy = bn.running_mean.clone(), var_copy = bn.running_var.clone();
    const Tensor expected = batch_norm2d(x, bn.weight, bn.bias, mean_copy, var_copy, true, 0.2, 1e-5);
    const std::vector<float> mean_before = bn.running_mean.to_vector();

    const Tensor y = bn.forward(x);
    EXPECT_EQ(y.to_vector(), expected.to_vector());
    EXPECT_EQ(bn.running_mean.to_vector(), mean_copy.to_vector());
    EXPECT_EQ(bn.running_var.to_vector(), var_copy.to_vector());
    EXPECT_NE(bn.running_mean.to_vector(), mean_before);  // the stats did move
    EXPECT_EQ(bn.num_batches_tracked.to_vector_i64(), std::vector<int64_t>{step});
  }
}

TEST(BatchNorm2dLayer, EvalModeUsesRunningStatsAndChangesNothing) {
  BatchNorm2d bn(2);
  bn.forward(random_tensor({3, 2, 4, 4}, 30, 0.0f, 4.0f));  // non-trivial running stats
  bn.eval();
  const std::vector<float> mean = bn.running_mean.to_vector(), var = bn.running_var.to_vector();
  const Tensor x = random_tensor({3, 2, 4, 4}, 31);
  const Tensor y = bn.forward(x);
  EXPECT_EQ(bn.running_mean.to_vector(), mean);
  EXPECT_EQ(bn.running_var.to_vector(), var);
  EXPECT_EQ(bn.num_batches_tracked.to_vector_i64(), std::vector<int64_t>{1});
  // By hand: y = (x - running_mean) / sqrt(running_var + eps) (weight 1, bias 0).
  const std::vector<float> xv = x.to_vector(), yv = y.to_vector();
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const std::size_t c = (i / 16) % 2;
    const double expected = (xv[i] - mean[c]) / std::sqrt(static_cast<double>(var[c]) + 1e-5);
    EXPECT_NEAR(yv[i], expected, 1e-5) << "element " << i;
  }
  bn.train();
  bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked.to_vector_i64(), std::vector<int64_t>{2});
}

// --- Initialisation ------------------------------------------------------------------------------

TEST(Init, FanIn) {
  EXPECT_EQ(init::fan_in(Tensor::zeros({8, 3, 5, 5})), 75);
  EXPECT_EQ(init::fan_in(Tensor::zeros({10, 7})), 7);
  EXPECT_EQ(init::fan_in(Tensor::zeros({4, 16, 3, 3})), 144);  // a ConvTranspose2d(4 -> 16) weight
  EXPECT_TRUE(contains(error_of([] { init::fan_in(Tensor::zeros({5})); }), "at least 2 dimensions"));
}

TEST(Init, EveryWeightAndBiasWithinItsBound) {
  Conv2d conv(16, 32, 3);  // fan_in 144: bound 1/12
  const double bound = 1.0 / 12.0;
  EXPECT_LE(max_abs(conv.weight), bound);
  EXPECT_LE(max_abs(conv.bias), bound);
  // The bound is reached, not far undershot (4608 draws: the largest is within 0.1% of it).
  EXPECT_GT(max_abs(conv.weight), 0.99 * bound);
  Linear fc(50, 20);
  EXPECT_LE(max_abs(fc.weight), 1.0 / std::sqrt(50.0));
  EXPECT_LE(max_abs(fc.bias), 1.0 / std::sqrt(50.0));
  EXPECT_GT(max_abs(fc.weight), 0.98 / std::sqrt(50.0));
}

TEST(Init, SampleVarianceIsBoundSquaredOverThree) {
  // kaiming_uniform_(a = sqrt(5)): U(-b, b), b = 1/sqrt(fan_in), variance b^2 / 3.
  Linear fc(512, 512);  // 262144 weights: the sample variance is within ~0.2% (1 sigma)
  const std::vector<float> w = fc.weight.to_vector();
  double sum = 0.0, sum_sq = 0.0;
  for (float v : w) {
    sum += v;
    sum_sq += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(w.size());
  const double mean = sum / n, variance = sum_sq / n - mean * mean;
  const double bound = 1.0 / std::sqrt(512.0);
  EXPECT_NEAR(mean, 0.0, 5.0 * std::sqrt(bound * bound / 3.0 / n));
  EXPECT_NEAR(variance / (bound * bound / 3.0), 1.0, 0.01);
}

TEST(Init, ConvTranspose2dUsesPyTorchsFanInQuirk) {
  // Weight [in=4, out=16, 3, 3]: PyTorch's fan_in is size(1) * 9 = 144
  // (bound 1/12), not in * 9 = 36 (bound 1/6).
  ConvTranspose2d up(4, 16, 3);
  const double bound = 1.0 / 12.0;
  EXPECT_LE(max_abs(up.weight), bound);
  EXPECT_GT(max_abs(up.weight), 0.99 * bound);  // 2304 draws reach it; a 1/24 bound would not
  EXPECT_LE(max_abs(up.bias), bound);
  // And the other way round, in=16, out=4: fan_in 36, bound 1/6.
  ConvTranspose2d down(16, 4, 3);
  EXPECT_LE(max_abs(down.weight), 1.0 / 6.0);
  EXPECT_GT(max_abs(down.weight), 0.95 / 6.0);  // 576 draws
}

TEST(Init, SameSeedSameWeightsWeightDrawnBeforeBias) {
  Generator a(42), b(42), c(43);
  Conv2d first(3, 4, 3, 1, 0, true, a), second(3, 4, 3, 1, 0, true, b), other(3, 4, 3, 1, 0, true, c);
  EXPECT_EQ(first.weight.to_vector(), second.weight.to_vector());
  EXPECT_EQ(first.bias.to_vector(), second.bias.to_vector());
  EXPECT_NE(first.weight.to_vector(), other.weight.to_vector());
  // The documented order: weight from the generator's stream, then bias.
  Generator manual(42);
  Tensor w = Tensor::empty({4, 3, 3, 3}), bias = Tensor::empty({4});
  const float bound = static_cast<float>(1.0 / std::sqrt(27.0));
  uniform_(w, -bound, bound, manual);
  uniform_(bias, -bound, bound, manual);
  testing::expect_close(first.weight, w, 1e-7, 0.0, "weight");
  testing::expect_close(first.bias, bias, 1e-7, 0.0, "bias");
  // Layers built one after the other from one generator differ.
  Generator shared(42);
  Conv2d l1(3, 4, 3, 1, 0, true, shared), l2(3, 4, 3, 1, 0, true, shared);
  EXPECT_NE(l1.weight.to_vector(), l2.weight.to_vector());
}

TEST(Init, DefaultGeneratorFollowsManualSeed) {
  manual_seed(7);
  Linear a(5, 5);
  manual_seed(7);
  Linear b(5, 5);
  EXPECT_EQ(a.weight.to_vector(), b.weight.to_vector());
  EXPECT_EQ(a.bias.to_vector(), b.bias.to_vector());
}

}  // namespace
}  // namespace engine
