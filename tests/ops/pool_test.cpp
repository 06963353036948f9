// avg_pool2d: values against a hand loop (global 7x7, 2x2 stride 2, overlapping
// windows, and a plane that is not a multiple of the window: floor), gradients
// by finite differences, and the arguments that must be refused.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::expect_close;
using testing::expect_gradients_match;
using testing::random_tensor;

// The pooled values of x [N, C, H, W], written the obvious way: for each
// output, average the window, in double.
std::vector<float> pool_by_hand(const Tensor& x, int64_t k, int64_t s, int64_t OH, int64_t OW) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const std::vector<float> v = x.to_vector();
  std::vector<float> y;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double total = 0.0;
          for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j)
              total += v[static_cast<std::size_t>(((n * C + c) * H + oh * s + i) * W + ow * s + j)];
          y.push_back(static_cast<float>(total / static_cast<double>(k * k)));
        }
  return y;
}

TEST(AvgPool2d, Global7x7) {
  // nn.AvgPool2d(7) on a 7x7 map: one value per plane, its mean.
  Tensor x = random_tensor({2, 3, 7, 7}, 1);
  Tensor y = avg_pool2d(x, 7);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 1, 1}));
  expect_close(y, pool_by_hand(x, 7, 7, 1, 1), 1e-6, 1e-5, "7x7");
}

TEST(AvgPool2d, TwoByTwoStrideTwo) {
  Tensor x = random_tensor({2, 2, 6, 6}, 2);
  Tensor y = avg_pool2d(x, 2, 2);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3, 3}));
  expect_close(y, pool_by_hand(x, 2, 2, 3, 3), 1e-6, 1e-5, "2x2 s2");
  // stride 0 means stride = kernel
  expect_close(avg_pool2d(x, 2), y, 0, 0, "stride 0");
}

TEST(AvgPool2d, SmallExampleByHand) {
  // 1 2 3 4 / 5 6 7 8 / 9 10 11 12 / 13 14 15 16, 2x2 stride 2.
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1, 1, 4, 4});
  expect_close(avg_pool2d(x, 2), {3.5f, 5.5f, 11.5f, 13.5f}, 0, 0, "4x4");
}

TEST(AvgPool2d, FloorWhenPlaneIsNotAMultipleOfTheWindow) {
  // H = 7, W = 5 with 2x2 stride 2: OH = (7-2)/2+1 = 3, OW = (5-2)/2+1 = 2;
  // the last row and column are never read.
  Tensor x = random_tensor({2, 3, 7, 5}, 3);
  Tensor y = avg_pool2d(x, 2, 2);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 3, 2}));
  expect_close(y, pool_by_hand(x, 2, 2, 3, 2), 1e-6, 1e-5, "7x5 floor");
  // 3x3 windows with stride 2 on 8x8: OH = OW = (8-3)/2+1 = 3.
  Tensor x8 = random_tensor({1, 2, 8, 8}, 4);
  Tensor y8 = avg_pool2d(x8, 3, 2);
  EXPECT_EQ(y8.shape(), (Shape{1, 2, 3, 3}));
  expect_close(y8, pool_by_hand(x8, 3, 2, 3, 3), 1e-6, 1e-5, "8x8 k3 s2");
}

TEST(AvgPool2d, OverlappingWindows) {
  // 3x3 windows with stride 1 on 5x5: OH = OW = 3, neighbours share 6 inputs.
  Tensor x = random_tensor({2, 2, 5, 5}, 5);
  Tensor y = avg_pool2d(x, 3, 1);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3, 3}));
  expect_close(y, pool_by_hand(x, 3, 1, 3, 3), 1e-6, 1e-5, "3x3 s1");
}

TEST(AvgPool2d, LargeInputMatchesHandLoop) {
  // The assignment's pool ([N, 2D, 7, 7] -> 1x1), above the parallel threshold.
  Tensor x = random_tensor({8, 128, 7, 7}, 6);
  expect_close(avg_pool2d(x, 7), pool_by_hand(x, 7, 7, 1, 1), 1e-6, 1e-5, "large 7x7");
}

// avg_pool2d is linear in x: central differences are exact up to float
// rounding, so the default tolerances are generous.
TEST(AvgPool2d, Gradients) {
  struct Case {
    Shape shape;
    int64_t kernel, stride;
  };
  for (const Case& c : {Case{{2, 3, 7, 7}, 7, 0}, Case{{1, 2, 6, 6}, 2, 2}, Case{{2, 1, 7, 5}, 2, 2},
                        Case{{1, 2, 5, 5}, 3, 1}}) {
    SCOPED_TRACE(shape_str(c.shape) + " k" + std::to_string(c.kernel) + " s" + std::to_string(c.stride));
    Tensor x = random_tensor(c.shape, 7);
    x.set_requires_grad();
    testing::GradCheckOptions options;
    options.max_elements_per_input = 200;  // every element, including the unread floor edge (gradient 0)
    expect_gradients_match([&](const std::vector<Tensor>& in) { return avg_pool2d(in[0], c.kernel, c.stride); },
                           {x}, options);
  }
}

TEST(AvgPool2d, GradientOfOverlapByHand) {
  // 3x3 input, 2x2 windows, stride 1: four windows; the centre is in all four,
  // edges in two, corners in one. d sum(y) / dx = count / 4.
  Tensor x = random_tensor({1, 1, 3, 3}, 8);
  x.set_requires_grad();
  sum(avg_pool2d(x, 2, 1)).backward();
  expect_close(x.grad(), {0.25f, 0.5f, 0.25f, 0.5f, 1.0f, 0.5f, 0.25f, 0.5f, 0.25f}, 0, 0, "overlap grad");
}

void expect_error(const std::function<void()>& call, const std::vector<std::string>& parts) {
  try {
    call();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& part : parts) EXPECT_NE(msg.find(part), std::string::npos) << msg;
  }
}

TEST(AvgPool2d, RejectsBadArguments) {
  expect_error([] { avg_pool2d(Tensor::zeros({2, 3, 5, 8}), 7); },
               {"avg_pool2d", "'kernel'", "7x7", "larger than the input plane 5x8", "[2, 3, 5, 8]"});
  expect_error([] { avg_pool2d(Tensor::zeros({3, 7, 7}), 7); }, {"avg_pool2d", "'x'", "4-d", "[3, 7, 7]"});
  expect_error([] { avg_pool2d(Tensor::zeros({1, 1, 4, 4}), 0); }, {"avg_pool2d", "'kernel'", "got 0"});
  expect_error([] { avg_pool2d(Tensor::zeros({1, 1, 4, 4}), 2, -1); }, {"avg_pool2d", "'stride'", "got -1"});
  expect_error([] { avg_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::I64), 2); }, {"avg_pool2d", "'x'", "I64"});
}

}  // namespace
}  // namespace engine
