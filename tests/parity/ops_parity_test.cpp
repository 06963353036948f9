// Every op the UNets use, against PyTorch (tests/data/golden/ops.safetensors,
// written by tools/parity/make_golden.py): forward values and the gradient of
// every input, at each configuration the UNet uses (channels small, spatial
// sizes and kernel/stride/padding real).
//
// For a case NAME the file holds the inputs NAME.<input>, an upstream gradient
// NAME.gy shaped like the output, the output NAME.y and the gradients
// NAME.grad_<input> of L = sum(gy * y). The engine computes y, then L through
// its own ops (mul, sum: the gradient of L with respect to y is exactly gy),
// and backpropagates.
//
// Tolerances (tests/parity/golden.h): 8 x PyTorch's own float32 error on the
// same tensor, floored at 1e-6 x the tensor's largest element (~16 ulps).
// Why 8: both sides round every product and sum once, but in other orders
// (the engine's blocked GEMM, im2col groups), so their errors are of the same
// size, sqrt(K) eps |terms| for a reduction of K terms, without being equal:
// conv weight gradients sum K = N * H * W = 1568 products per element, and
// two independent samples of that error differ by a few times its typical
// size at worst over thousands of elements.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"
#include "tests/parity/golden.h"

namespace engine {
namespace {

using parity::GoldenFile;

const GoldenFile& ops_golden() {
  static const GoldenFile golden("ops.safetensors");
  return golden;
}

// Loads inputs `input_names` of case `name`, runs `op`, checks y, then
// backpropagates L = sum(gy * y) and checks every input's gradient.
void check_case(const std::string& name, const std::vector<std::string>& input_names,
                const std::function<Tensor(std::vector<Tensor>&)>& op, const parity::Tolerance& tol = {}) {
  SCOPED_TRACE(name);
  const GoldenFile& g = ops_golden();
  std::vector<Tensor> inputs;
  for (const auto& input : input_names) inputs.push_back(g.copy(name + "." + input).set_requires_grad(true));
  Tensor y = op(inputs);
  parity::expect_matches_golden(g, name + ".y", y, tol);
  sum(mul(y, g.get(name + ".gy"))).backward();
  for (size_t i = 0; i < inputs.size(); ++i)
    parity::expect_matches_golden(g, name + ".grad_" + input_names[i], inputs[i].grad(), tol);
}

TEST(OpsParity, Conv2dAtEveryUNetConfiguration) {
  // name suffix -> (stride, padding); the kernel size and channels come from the weight.
  const std::vector<std::tuple<std::string, int64_t, int64_t>> cases = {
      {"conv3x3_s1_28_in", 1, 1}, {"conv3x3_s1_28", 1, 1}, {"conv3x3_s1_14", 1, 1},    {"conv3x3_s1_7", 1, 1},
      {"conv3x3_s2_28", 2, 1},    {"conv3x3_s2_14", 2, 1}, {"conv3x3_s1_28_out", 1, 1}};
  for (const auto& [suffix, stride, padding] : cases)
    check_case("conv2d." + suffix, {"x", "weight", "bias"},
               [&](std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], stride, padding); });
  parity::report_worst_ratio("conv2d");
}

TEST(OpsParity, ConvTranspose2dAtEveryUNetConfiguration) {
  const std::vector<std::tuple<std::string, int64_t, int64_t>> cases = {
      {"convT4_s2_7", 2, 1}, {"convT4_s2_14", 2, 1}, {"convT7_s7_1", 7, 0}};
  for (const auto& [suffix, stride, padding] : cases)
    check_case("conv_transpose2d." + suffix, {"x", "weight", "bias"},
               [&](std::vector<Tensor>& in) { return conv_transpose2d(in[0], in[1], in[2], stride, padding); });
  parity::report_worst_ratio("conv_transpose2d");
}

TEST(OpsParity, BatchNormTrainingModeIncludingRunningStats) {
  const GoldenFile& g = ops_golden();
  for (const std::string name : {"batch_norm_train.28", "batch_norm_train.7"}) {
    Tensor running_mean = g.copy(name + ".running_mean_before");
    Tensor running_var = g.copy(name + ".running_var_before");
    check_case(name, {"x", "weight", "bias"}, [&](std::vector<Tensor>& in) {
      return batch_norm2d(in[0], in[1], in[2], running_mean, running_var, /*training=*/true, 0.1, 1e-5);
    });
    // running = 0.9 running + 0.1 batch statistic (unbiased variance): one
    // rounding of a mean over N*H*W = 3136 or 196 values.
    parity::expect_matches_golden(g, name + ".running_mean_after", running_mean);
    parity::expect_matches_golden(g, name + ".running_var_after", running_var);
  }
  parity::report_worst_ratio("batch_norm2d (training)");
}

TEST(OpsParity, BatchNormEvalModeUsesRunningStats) {
  const GoldenFile& g = ops_golden();
  Tensor running_mean = g.copy("batch_norm_eval.running_mean");
  Tensor running_var = g.copy("batch_norm_eval.running_var");
  check_case("batch_norm_eval", {"x", "weight", "bias"}, [&](std::vector<Tensor>& in) {
    return batch_norm2d(in[0], in[1], in[2], running_mean, running_var, /*training=*/false, 0.1, 1e-5);
  });
  // Eval mode must leave the running statistics alone: bit for bit.
  EXPECT_EQ(running_mean.to_vector(), g.get("batch_norm_eval.running_mean").to_vector());
  EXPECT_EQ(running_var.to_vector(), g.get("batch_norm_eval.running_var").to_vector());
}

TEST(OpsParity, GeluExactErfForm) {
  // x spans [-6, 6]: both tails and the curved middle. PyTorch's float32 GELU
  // errs by ~1 ulp; the floor (16 ulps of max|y| = 6) covers another erf.
  check_case("gelu", {"x"}, [](std::vector<Tensor>& in) { return gelu(in[0]); });
}

TEST(OpsParity, AvgPoolSevenByseven) {
  check_case("avg_pool2d", {"x"}, [](std::vector<Tensor>& in) { return avg_pool2d(in[0], 7); });
}

TEST(OpsParity, LinearLayersOfTheFcBlocks) {
  for (const std::string name : {"linear.fc_time", "linear.fc_class", "linear.fc_hidden"})
    check_case(name, {"x", "weight", "bias"},
               [](std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); });
}

TEST(OpsParity, ConcatAlongChannels) {
  check_case("concat", {"a", "b"}, [](std::vector<Tensor>& in) { return concat({in[0], in[1]}, 1); });
}

TEST(OpsParity, BroadcastingOfTheConditioning) {
  // [N, C, H, W] + [N, C, 1, 1] and [N, C, 1, 1] * [N, C, H, W]: the gradient
  // of the [N, C, 1, 1] operand sums over H * W = 49 elements.
  check_case("add_broadcast", {"a", "b"}, [](std::vector<Tensor>& in) { return add(in[0], in[1]); });
  check_case("mul_broadcast", {"a", "b"}, [](std::vector<Tensor>& in) { return mul(in[0], in[1]); });
}

TEST(OpsParity, MseLoss) {
  // A mean over 3136 squared differences: the output's error is ~sqrt(K) eps.
  check_case("mse_loss", {"pred", "target"}, [](std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); });
  parity::report_worst_ratio("eval BatchNorm, GELU, pool, linear, concat, broadcasting, mse");
}

TEST(OpsParity, GoldenFileIsWhatTheTestsExpect) {
  // A regenerated file with missing cases would make the tests above throw;
  // this names the generator, so a stale checkout is easy to diagnose.
  const auto& metadata = ops_golden().metadata();
  ASSERT_TRUE(metadata.count("generator"));
  EXPECT_EQ(metadata.at("generator"), "tools/parity/make_golden.py");
}

}  // namespace
}  // namespace engine
