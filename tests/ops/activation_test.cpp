// gelu: values against the erf formula evaluated in double (including 0 and
// large |x|), the shared math header against the same, the derivative, and
// gradients by finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/ops.h"
#include "kernels/common/gelu_math.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::expect_close;
using testing::expect_gradients_match;
using testing::random_tensor;

// The exact GELU and its derivative in double, from std::erf: the reference.
double gelu_reference(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double gelu_derivative_reference(double x) {
  const double pi = 3.14159265358979323846;
  return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * pi);
}

const std::vector<float> kPoints{-30.0f, -10.0f, -5.0f, -3.0f, -1.0f, -0.5f, -1e-3f, 0.0f,
                                 1e-3f,  0.5f,   1.0f,  3.0f,  5.0f,  10.0f, 30.0f};

TEST(Gelu, ValuesMatchErfFormula) {
  Tensor x = Tensor::from_vector(kPoints, {static_cast<int64_t>(kPoints.size())});
  std::vector<float> expected;
  for (float v : kPoints) expected.push_back(static_cast<float>(gelu_reference(v)));
  // float erf: absolute error a few ulp of |x|; for x << 0 the true value is
  // tiny (-1.4e-6 at -5) and float 1 + erf cancels, so the bound is absolute.
  expect_close(gelu(x), expected, 2e-6, 1e-6, "gelu");
  EXPECT_EQ(x.shape(), gelu(x).shape());
}

TEST(Gelu, ExactValuesAtZeroAndFarOut) {
  Tensor y = gelu(Tensor::from_vector({0.0f, 30.0f, -30.0f, 1.0f}, {4}));
  const std::vector<float> v = y.to_vector();
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[1], 30.0f);   // erf saturates at 1: gelu(x) = x
  EXPECT_EQ(v[2], 0.0f);    // 1 + erf saturates at 0 (a -0, which compares equal)
  EXPECT_NEAR(v[3], 0.8413447460685429, 1e-6);  // Phi(1)
  EXPECT_FALSE(std::isnan(v[2]));
}

TEST(Gelu, SharedMathMatchesReference) {
  for (float v : kPoints) {
    EXPECT_NEAR(math::gelu(v), gelu_reference(v), 2e-6 + 1e-6 * std::fabs(v)) << "x = " << v;
    EXPECT_NEAR(math::gelu_derivative(v), gelu_derivative_reference(v), 2e-6) << "x = " << v;
  }
  EXPECT_EQ(math::gelu_derivative(30.0f), 1.0f);
  EXPECT_EQ(math::gelu_derivative(-30.0f), 0.0f);
  EXPECT_NEAR(math::gelu_derivative(0.0f), 0.5, 1e-7);  // Phi(0) + 0
}

TEST(Gelu, LargeTensorMatchesReference) {
  // Above the kernels' parallel threshold, in [N, C, H, W] form.
  Tensor x = random_tensor({4, 8, 32, 40}, 7, -6.0f, 6.0f);
  std::vector<float> expected;
  for (float v : x.to_vector()) expected.push_back(static_cast<float>(gelu_reference(v)));
  expect_close(gelu(x), expected, 4e-6, 1e-6, "gelu large");
}

TEST(Gelu, Gradient) {
  // Points in [-4, 4], where gelu' varies (0 .. 1.13); step 1e-2 is fine for
  // a smooth function (truncation error ~ h^2 |gelu'''| / 6 < 1e-4).
  Tensor x = random_tensor({2, 3, 4, 5}, 11, -4.0f, 4.0f);
  x.set_requires_grad();
  expect_gradients_match([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x});
}

TEST(Gelu, BackwardValuesMatchDerivative) {
  Tensor x = Tensor::from_vector(kPoints, {static_cast<int64_t>(kPoints.size())});
  x.set_requires_grad();
  sum(gelu(x)).backward();
  std::vector<float> expected;
  for (float v : kPoints) expected.push_back(static_cast<float>(gelu_derivative_reference(v)));
  expect_close(x.grad(), expected, 2e-6, 1e-6, "gelu'");
}

TEST(Gelu, RejectsNonFloat) {
  try {
    gelu(Tensor::zeros({3}, DType::I64));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("gelu"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'x'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("I64"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace engine
