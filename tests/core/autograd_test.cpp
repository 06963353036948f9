// The tape: shared subexpressions, accumulation across backward calls,
// no-grad scopes, and a graph that is freed after backward.
#include <gtest/gtest.h>

#include "core/autograd.h"
#include "core/ops.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

TEST(Autograd, SharedSubexpressionGetsBothContributions) {
  // y = x*x + x  ->  dy/dx = 2x + 1; z = x*x is used twice in w = z*z + z.
  Tensor x = Tensor::from_vector({3.0f}, {1});
  x.set_requires_grad();
  Tensor z = mul(x, x);
  Tensor w = add(mul(z, z), z);  // w = x^4 + x^2, dw/dx = 4x^3 + 2x = 114
  sum(w).backward();
  EXPECT_FLOAT_EQ(x.grad().item(), 114.0f);
}

TEST(Autograd, SameLeafTwiceInOneOp) {
  Tensor x = Tensor::from_vector({1.5f, -2.0f}, {2});
  x.set_requires_grad();
  sum(add(x, x)).backward();
  testing::expect_close(x.grad(), {2.0f, 2.0f}, 0, 0, "d(x+x)/dx");
}

TEST(Autograd, GradientsAccumulateOverTwoBackwardCalls) {
  Tensor x = Tensor::from_vector({1.0f, 2.0f}, {2});
  x.set_requires_grad();
  sum(scale(x, 3.0f)).backward();
  sum(mul(x, x)).backward();  // second graph: adds 2x
  testing::expect_close(x.grad(), {3.0f + 2.0f, 3.0f + 4.0f}, 1e-6, 0, "accumulated grad");
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, NoGradScopeRecordsNothing) {
  Tensor x = Tensor::from_vector({1.0f}, {1});
  x.set_requires_grad();
  {
    autograd::NoGradGuard guard;
    Tensor y = mul(x, x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    EXPECT_THROW(sum(y).backward(), Error);
  }
  EXPECT_TRUE(autograd::grad_mode_enabled());
  EXPECT_TRUE(mul(x, x).requires_grad());
}

TEST(Autograd, GraphIsFreedAfterBackward) {
  Tensor x = testing::random_tensor({256, 256}, 1);
  x.set_requires_grad();
  const auto before = cpu_allocator_stats().bytes_in_use;
  Tensor loss;
  {
    Tensor y = mul(x, x);  // saves x and x (aliases, no new memory) ...
    Tensor z = mul(y, y);  // ... and y: 256 KiB kept alive by the graph
    loss = sum(z);
  }
  const auto with_graph = cpu_allocator_stats().bytes_in_use;
  EXPECT_GE(with_graph - before, 2u * 256 * 256 * 4) << "the graph should hold y and z";
  loss.backward();
  x.zero_grad();
  const auto after = cpu_allocator_stats().bytes_in_use;
  EXPECT_LE(after - before, 64u) << "only the scalar loss should remain after backward";
  EXPECT_EQ(loss.grad_fn()->backward, nullptr);
  try {
    loss.backward();
    FAIL() << "a second backward through a freed graph must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("freed"), std::string::npos) << e.what();
  }
}

TEST(Autograd, BranchWithoutGradientDoesNotBlockOthers) {
  // c = a*b where only a requires grad; the path through b is never walked.
  Tensor a = Tensor::from_vector({2.0f}, {1});
  Tensor b = Tensor::from_vector({5.0f}, {1});
  a.set_requires_grad();
  sum(add(mul(a, b), a)).backward();
  EXPECT_FLOAT_EQ(a.grad().item(), 6.0f);
  EXPECT_FALSE(b.grad().defined());
}

TEST(Autograd, BackwardNeedsScalar) {
  Tensor x = Tensor::from_vector({1, 2}, {2});
  x.set_requires_grad();
  EXPECT_THROW(mul(x, x).backward(), Error);
}

TEST(Autograd, ReshapeIsRecorded) {
  Tensor x = testing::random_tensor({2, 6}, 3);
  x.set_requires_grad();
  testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return mul(in[0].reshape({3, -1}), in[0].reshape({3, 4})); }, {x});
}

}  // namespace
}  // namespace engine
