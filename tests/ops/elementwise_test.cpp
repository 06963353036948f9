// add/sub/mul with broadcasting, scale, add_scalar: values by hand, gradients
// by finite differences, and the broadcasting that must be refused.
#include <gtest/gtest.h>

#include "core/ops.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::expect_close;
using testing::expect_gradients_match;
using testing::random_tensor;

TEST(Elementwise, SameShapeValues) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector({10, 20, 30, 40}, {2, 2});
  expect_close(add(a, b), {11, 22, 33, 44}, 0, 0, "add");
  expect_close(sub(a, b), {-9, -18, -27, -36}, 0, 0, "sub");
  expect_close(mul(a, b), {10, 40, 90, 160}, 0, 0, "mul");
  expect_close(scale(a, 0.5f), {0.5f, 1, 1.5f, 2}, 0, 0, "scale");
  expect_close(add_scalar(a, -1.0f), {0, 1, 2, 3}, 0, 0, "add_scalar");
}

TEST(Elementwise, ScalarBroadcastEitherSide) {
  Tensor a = Tensor::from_vector({1, 2, 3}, {3});
  Tensor s = Tensor::scalar(2.0f);
  expect_close(mul(a, s), {2, 4, 6}, 0, 0, "a*s");
  expect_close(sub(s, a), {1, 0, -1}, 0, 0, "s-a");
  EXPECT_EQ(sub(s, a).shape(), (Shape{3}));
}

TEST(Elementwise, PerChannelBroadcastEitherSide) {
  // x [N=2, C=2, H=1, W=2], t [2, 2, 1, 1]: t is constant over H, W.
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 1, 2});
  Tensor t = Tensor::from_vector({10, 20, 30, 40}, {2, 2, 1, 1});
  expect_close(add(x, t), {11, 12, 23, 24, 35, 36, 47, 48}, 0, 0, "x+t");
  expect_close(sub(t, x), {9, 8, 17, 16, 25, 24, 33, 32}, 0, 0, "t-x");
  expect_close(mul(t, x), {10, 20, 60, 80, 150, 180, 280, 320}, 0, 0, "t*x");
}

TEST(Elementwise, RefusesUndocumentedBroadcasting) {
  Tensor x = Tensor::zeros({2, 3, 4, 4});
  EXPECT_THROW(add(x, Tensor::zeros({1, 3, 1, 1})), Error);  // batch extent 1 is not broadcast
  EXPECT_THROW(add(x, Tensor::zeros({3, 1, 1})), Error);     // ranks differ
  EXPECT_THROW(mul(x, Tensor::zeros({2, 1, 4, 4})), Error);  // a middle extent of 1 is not broadcast
  try {
    add(x, Tensor::zeros({2, 4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3, 4, 4]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 4]"), std::string::npos) << e.what();
  }
}

TEST(Elementwise, RefusesWrongDtype) {
  Tensor i = Tensor::zeros({2}, DType::I64);
  EXPECT_THROW(add(i, Tensor::zeros({2})), Error);
}

TEST(Elementwise, GradientsSameShape) {
  auto a = random_tensor({3, 5}, 1), b = random_tensor({3, 5}, 2);
  a.set_requires_grad();
  b.set_requires_grad();
  for (auto op : {add, sub, mul})
    expect_gradients_match([op](const std::vector<Tensor>& in) { return op(in[0], in[1]); }, {a, b});
}

TEST(Elementwise, GradientsPerChannelBroadcast) {
  auto x = random_tensor({2, 3, 4, 5}, 3), t = random_tensor({2, 3, 1, 1}, 4);
  x.set_requires_grad();
  t.set_requires_grad();
  for (auto op : {add, sub, mul}) {
    expect_gradients_match([op](const std::vector<Tensor>& in) { return op(in[0], in[1]); }, {x, t});
    expect_gradients_match([op](const std::vector<Tensor>& in) { return op(in[1], in[0]); }, {x, t});
  }
}

TEST(Elementwise, GradientsScalarBroadcast) {
  auto x = random_tensor({4, 6}, 5), s = random_tensor({}, 6);
  x.set_requires_grad();
  s.set_requires_grad();
  for (auto op : {add, sub, mul}) {
    expect_gradients_match([op](const std::vector<Tensor>& in) { return op(in[0], in[1]); }, {x, s});
    expect_gradients_match([op](const std::vector<Tensor>& in) { return op(in[1], in[0]); }, {x, s});
  }
}

TEST(Elementwise, GradientsScaleAndAddScalar) {
  auto x = random_tensor({7}, 7);
  x.set_requires_grad();
  expect_gradients_match([](const std::vector<Tensor>& in) { return scale(in[0], -3.0f); }, {x});
  expect_gradients_match([](const std::vector<Tensor>& in) { return add_scalar(in[0], 2.5f); }, {x});
}

}  // namespace
}  // namespace engine
