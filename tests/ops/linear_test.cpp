// linear: values against a hand loop, gradients of x, weight and bias by
// finite differences, the accumulating kernel backward, and bad arguments.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/cpu/linear.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::expect_close;
using testing::expect_gradients_match;
using testing::random_tensor;

// y[n, o] = b[o] + sum_i x[n, i] w[o, i], summed in double.
std::vector<float> linear_by_hand(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t batch = x.size(0), in = x.size(1), out = w.size(0);
  const std::vector<float> xv = x.to_vector(), wv = w.to_vector();
  const std::vector<float> bv = b.defined() ? b.to_vector() : std::vector<float>(out, 0.0f);
  std::vector<float> y(static_cast<std::size_t>(batch * out));
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bv[o];
      for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(xv[n * in + i]) * wv[o * in + i];
      y[n * out + o] = static_cast<float>(acc);
    }
  return y;
}

TEST(Linear, SmallValuesByHand) {
  // x [2, 3], w [2, 3], b [2]:
  //   y[0] = (1*1 + 2*0 + 3*-1 + 0.5, 1*2 + 2*1 + 3*0 - 1) = (-1.5, 3)
  //   y[1] = (4*1 + 5*0 + 6*-1 + 0.5, 4*2 + 5*1 + 6*0 - 1) = (-1.5, 12)
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = Tensor::from_vector({1, 0, -1, 2, 1, 0}, {2, 3});
  Tensor b = Tensor::from_vector({0.5f, -1}, {2});
  Tensor y = linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  expect_close(y, {-1.5f, 3, -1.5f, 12}, 0, 0, "with bias");
  expect_close(linear(x, w, Tensor()), {-2, 4, -2, 13}, 0, 0, "without bias");
}

TEST(Linear, ValuesMatchHandLoop) {
  // The assignment's shapes (in = 1 and 10) and sizes that exercise the
  // GEMM's edge tiles and several K blocks.
  const int64_t shapes[][3] = {{128, 1, 128}, {128, 10, 64}, {7, 13, 5}, {33, 300, 70}, {1, 1, 1}};
  for (const auto& s : shapes) {
    Tensor x = random_tensor({s[0], s[1]}, 1), w = random_tensor({s[2], s[1]}, 2), b = random_tensor({s[2]}, 3);
    const std::string what =
        "N=" + std::to_string(s[0]) + " in=" + std::to_string(s[1]) + " out=" + std::to_string(s[2]);
    expect_close(linear(x, w, b), linear_by_hand(x, w, b), 1e-5, 1e-5, (what + " with bias").c_str());
    expect_close(linear(x, w, Tensor()), linear_by_hand(x, w, Tensor()), 1e-5, 1e-5, (what + " no bias").c_str());
  }
}

// linear is linear in each argument, so central differences have no
// truncation error at any step: a large step (0.25) shrinks the float32
// rounding error of the outputs, divided by 2 * step, far below tolerance.
testing::GradCheckOptions linear_grad_options() {
  testing::GradCheckOptions options;
  options.step = 0.25f;
  return options;
}

TEST(Linear, GradientsWithBias) {
  for (const auto& s : {std::vector<int64_t>{4, 3, 5}, std::vector<int64_t>{20, 300, 40}}) {
    Tensor x = random_tensor({s[0], s[1]}, 11), w = random_tensor({s[2], s[1]}, 12), b = random_tensor({s[2]}, 13);
    x.set_requires_grad();
    w.set_requires_grad();
    b.set_requires_grad();
    expect_gradients_match([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b},
                           linear_grad_options());
  }
}

TEST(Linear, GradientsWithoutBias) {
  Tensor x = random_tensor({6, 10}, 21), w = random_tensor({7, 10}, 22);
  x.set_requires_grad();
  w.set_requires_grad();
  expect_gradients_match([](const std::vector<Tensor>& in) { return linear(in[0], in[1], Tensor()); }, {x, w},
                         linear_grad_options());
}

TEST(Linear, GradientOfOneArgumentOnly) {
  // Only the weight requires grad: x gets none, the weight's is still right
  // (the backward must not need the x gradient's buffers or the weight).
  Tensor x = random_tensor({5, 4}, 31), w = random_tensor({3, 4}, 32), b = random_tensor({3}, 33);
  w.set_requires_grad();
  expect_gradients_match([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b},
                         linear_grad_options());
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(b.grad().defined());
}

TEST(Linear, KernelBackwardAccumulates) {
  // grad_x = grad_y W, grad_w = grad_y^T x, grad_b = column sums of grad_y,
  // added onto gradients that start at 1.
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};   // [2, 3]
  const std::vector<float> w = {1, 0, -1, 2, 1, 0};  // [2, 3]
  const std::vector<float> gy = {1, 2, 3, 4};        // [2, 2]
  std::vector<float> gx(6, 1.0f), gw(6, 1.0f), gb(2, 1.0f);
  cpu::linear_backward(x.data(), w.data(), gy.data(), gx.data(), gw.data(), gb.data(), 2, 3, 2);
  // grad_y W: row 0 = 1*(1,0,-1) + 2*(2,1,0) = (5, 2, -1); row 1 = 3*(1,0,-1) + 4*(2,1,0) = (11, 4, -3)
  EXPECT_EQ(gx, (std::vector<float>{6, 3, 0, 12, 5, -2}));
  // grad_y^T x: row 0 = 1*(1,2,3) + 3*(4,5,6) = (13, 17, 21); row 1 = 2*(1,2,3) + 4*(4,5,6) = (18, 24, 30)
  EXPECT_EQ(gw, (std::vector<float>{14, 18, 22, 19, 25, 31}));
  EXPECT_EQ(gb, (std::vector<float>{5, 7}));
  // Null gradients are skipped (and their inputs may be null too).
  cpu::linear_backward(nullptr, nullptr, gy.data(), nullptr, nullptr, gb.data(), 2, 3, 2);
  EXPECT_EQ(gb, (std::vector<float>{9, 13}));
}

// Runs `body`, expecting an engine::Error whose message contains every part.
template <typename Body>
void expect_error(Body body, std::initializer_list<const char*> parts) {
  try {
    body();
    ADD_FAILURE() << "expected an engine::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const char* part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

TEST(Linear, RejectsBadArguments) {
  const Tensor x = Tensor::zeros({4, 3}), w = Tensor::zeros({5, 3}), b = Tensor::zeros({5});
  expect_error([&] { linear(Tensor::zeros({4, 3, 1}), w, b); }, {"linear", "'x'", "2-d", "[4, 3, 1]"});
  expect_error([&] { linear(Tensor::zeros({3}), w, b); }, {"linear", "'x'", "2-d", "[3]"});
  expect_error([&] { linear(x, Tensor::zeros({15}), b); }, {"linear", "'weight'", "2-d", "[15]"});
  expect_error(
      [&] {
        linear(x, Tensor::zeros({5, 4}), b);
      },
      {"linear", "'weight'", "in_features = 3", "[4, 3]", "[5, 4]"});
  expect_error([&] { linear(x, w, Tensor::zeros({4})); }, {"linear", "'bias'", "[5]", "[4]"});
  expect_error([&] { linear(x, w, Tensor::zeros({1, 5})); }, {"linear", "'bias'", "[5]", "[1, 5]"});
  expect_error([&] { linear(Tensor::zeros({4, 3}, DType::I64), w, b); }, {"linear", "'x'", "F32", "I64"});
  expect_error([&] { linear(x, Tensor::zeros({5, 3}, DType::I64), b); }, {"linear", "'weight'", "F32"});
  expect_error([&] { linear(x, w, Tensor::zeros({5}, DType::I64)); }, {"linear", "'bias'", "F32"});
  expect_error([&] { linear(Tensor(), w, b); }, {"linear", "'x'", "undefined"});
  expect_error([&] { linear(x, Tensor(), b); }, {"linear", "'weight'", "undefined"});
}

}  // namespace
}  // namespace engine
