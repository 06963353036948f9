// sum, mean, mse_loss: values by hand, gradients by finite differences.
#include <gtest/gtest.h>

#include "core/ops.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::expect_gradients_match;
using testing::random_tensor;

TEST(Reduce, Values) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_FLOAT_EQ(sum(a).item(), 21.0f);
  EXPECT_FLOAT_EQ(mean(a).item(), 3.5f);
  EXPECT_EQ(sum(a).shape(), Shape{});
  Tensor b = Tensor::from_vector({1, 1, 1, 1, 1, 1}, {2, 3});
  // (0 + 1 + 4 + 9 + 16 + 25) / 6
  EXPECT_FLOAT_EQ(mse_loss(a, b).item(), 55.0f / 6.0f);
}

TEST(Reduce, LargeSumIsAccurate) {
  // 1M values of 0.1: a float accumulator drifts visibly; ours sums in double.
  Tensor a = Tensor::full({1000, 1000}, 0.1f);
  EXPECT_NEAR(sum(a).item(), 100000.0f * 1.0000000015f, 0.01f);
}

TEST(Reduce, Gradients) {
  auto a = random_tensor({3, 4}, 1);
  a.set_requires_grad();
  expect_gradients_match([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a});
  expect_gradients_match([](const std::vector<Tensor>& in) { return mean(in[0]); }, {a});
}

TEST(Reduce, MseGradientsBothArguments) {
  auto p = random_tensor({2, 1, 3, 3}, 2), t = random_tensor({2, 1, 3, 3}, 3);
  p.set_requires_grad();
  t.set_requires_grad();
  expect_gradients_match([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); }, {p, t});
}

TEST(Reduce, MseRejectsShapeMismatch) {
  try {
    mse_loss(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}));
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mse_loss"), std::string::npos) << msg;
    EXPECT_NE(msg.find("target"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace engine
