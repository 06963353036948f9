// concat: values against a hand loop along every dim (negative too), any
// number of inputs, int64 data, gradients of every input, and errors that
// name the mismatching input and its shape.
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

// Concatenation of 4-d tensors written the obvious way: walk every output
// index, find which input its coordinate along dim falls into, read it there.
std::vector<float> concat_by_hand(const std::vector<Tensor>& inputs, int64_t dim) {
  Shape out_shape = inputs[0].shape();
  out_shape[static_cast<std::size_t>(dim)] = 0;
  for (const Tensor& t : inputs) out_shape[static_cast<std::size_t>(dim)] += t.size(dim);
  std::vector<std::vector<float>> values;
  for (const Tensor& t : inputs) values.push_back(t.to_vector());
  std::vector<float> out;
  int64_t idx[4];
  for (idx[0] = 0; idx[0] < out_shape[0]; ++idx[0])
    for (idx[1] = 0; idx[1] < out_shape[1]; ++idx[1])
      for (idx[2] = 0; idx[2] < out_shape[2]; ++idx[2])
        for (idx[3] = 0; idx[3] < out_shape[3]; ++idx[3]) {
          int64_t at[4] = {idx[0], idx[1], idx[2], idx[3]};
          std::size_t k = 0;
          while (at[dim] >= inputs[k].size(dim)) at[dim] -= inputs[k++].size(dim);
          const Shape& s = inputs[k].shape();
          out.push_back(values[k][static_cast<std::size_t>(((at[0] * s[1] + at[1]) * s[2] + at[2]) * s[3] + at[3])]);
        }
  return out;
}

TEST(Concat, ChannelsSkipFirst) {
  // The UNet's join: skip [2, 1, 2, 2] then up [2, 3, 2, 2] -> [2, 4, 2, 2].
  Tensor skip = random_tensor({2, 1, 2, 2}, 1), up = random_tensor({2, 3, 2, 2}, 2);
  Tensor y = concat({skip, up}, 1);
  EXPECT_EQ(y.shape(), (Shape{2, 4, 2, 2}));
  expect_close(y, concat_by_hand({skip, up}, 1), 0, 0, "dim 1");
}

TEST(Concat, SmallExampleByHand) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector({5, 6}, {2, 1});
  expect_close(concat({a, b}, 1), {1, 2, 5, 3, 4, 6}, 0, 0, "dim 1");
  expect_close(concat({a, b}, -1), {1, 2, 5, 3, 4, 6}, 0, 0, "dim -1");
  Tensor c = Tensor::from_vector({7, 8}, {1, 2});
  Tensor y = concat({a, c}, 0);
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  expect_close(y, {1, 2, 3, 4, 7, 8}, 0, 0, "dim 0");
}

TEST(Concat, EveryDimAndNegativeDims) {
  for (int64_t dim = -4; dim < 4; ++dim) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    const int64_t d = dim < 0 ? dim + 4 : dim;
    Shape sa{2, 3, 4, 5}, sb{2, 3, 4, 5}, sc{2, 3, 4, 5};
    sa[static_cast<std::size_t>(d)] = 1;
    sb[static_cast<std::size_t>(d)] = 2;
    sc[static_cast<std::size_t>(d)] = 3;
    Tensor a = random_tensor(sa, 3), b = random_tensor(sb, 4), c = random_tensor(sc, 5);
    Tensor y = concat({a, b, c}, dim);
    Shape expected_shape{2, 3, 4, 5};
    expected_shape[static_cast<std::size_t>(d)] = 6;
    EXPECT_EQ(y.shape(), expected_shape);
    expect_close(y, concat_by_hand({a, b, c}, d), 0, 0, "three inputs");
  }
}

TEST(Concat, SingleInputAndEmptyExtent) {
  Tensor a = random_tensor({2, 3, 2, 2}, 6);
  Tensor y = concat({a}, 1);
  expect_close(y, a, 0, 0, "one input");
  EXPECT_FALSE(y.same_storage(a));  // a new tensor, like torch.cat
  Tensor empty = Tensor::zeros({2, 0, 2, 2});
  expect_close(concat({empty, a, empty}, 1), a, 0, 0, "with empty inputs");
}

TEST(Concat, LargeChannelsMatchHandLoop) {
  // Above the parallel threshold.
  Tensor a = random_tensor({4, 16, 14, 14}, 7), b = random_tensor({4, 8, 14, 14}, 8);
  expect_close(concat({a, b}, 1), concat_by_hand({a, b}, 1), 0, 0, "large");
}

TEST(Concat, Int64Values) {
  Tensor a = Tensor::from_vector_i64({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector_i64({5, 6}, {2, 1});
  Tensor y = concat({a, b}, 1);
  EXPECT_EQ(y.dtype(), DType::I64);
  EXPECT_EQ(y.to_vector_i64(), (std::vector<int64_t>{1, 2, 5, 3, 4, 6}));
}

// concat is linear (a copy): central differences are exact up to rounding.
TEST(Concat, GradientsOfEveryInput) {
  for (int64_t dim : {1, 0, -1}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    const int64_t d = dim < 0 ? dim + 4 : dim;
    Shape sa{2, 3, 2, 2}, sb{2, 3, 2, 2}, sc{2, 3, 2, 2};
    sa[static_cast<std::size_t>(d)] = 1;
    sc[static_cast<std::size_t>(d)] = 2;
    Tensor a = random_tensor(sa, 9), b = random_tensor(sb, 10), c = random_tensor(sc, 11);
    a.set_requires_grad();
    b.set_requires_grad();
    c.set_requires_grad();
    expect_gradients_match([dim](const std::vector<Tensor>& in) { return concat(in, dim); }, {a, b, c});
  }
}

TEST(Concat, GradientIsTheSliceAndSkipsInputsWithoutGrad) {
  Tensor a = random_tensor({2, 1, 2, 2}, 12), b = random_tensor({2, 3, 2, 2}, 13);
  a.set_requires_grad();  // b does not require grad
  Tensor probe = random_tensor({2, 4, 2, 2}, 14);
  sum(mul(concat({a, b}, 1), probe)).backward();
  EXPECT_FALSE(b.grad().defined());
  // d/da of sum(probe * y) is probe's channel-0 slice.
  const std::vector<float> p = probe.to_vector();
  std::vector<float> expected;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 4; ++i) expected.push_back(p[static_cast<std::size_t>(n * 16 + i)]);
  expect_close(a.grad(), expected, 0, 0, "slice");
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

TEST(Concat, ErrorsNameTheInputAndShapes) {
  Tensor a = Tensor::zeros({2, 3, 4, 4}), b = Tensor::zeros({2, 5, 4, 4});
  expect_error([&] { concat({a, b, Tensor::zeros({2, 1, 4, 5})}, 1); },
               {"concat", "tensors[2]", "[2, 1, 4, 5]", "[2, 3, 4, 4]", "dim 1"});
  expect_error([&] { concat({a, b}, 0); }, {"concat", "tensors[1]", "[2, 5, 4, 4]", "[2, 3, 4, 4]", "dim 0"});
  expect_error([&] { concat({a, Tensor::zeros({2, 3, 4})}, 1); }, {"concat", "tensors[1]", "[2, 3, 4]"});
  expect_error([&] { concat({a, Tensor::zeros({2, 3, 4, 4}, DType::I64)}, 1); },
               {"concat", "tensors[1]", "F32", "I64"});
  expect_error([&] { concat({a, b}, 4); }, {"concat", "'dim'", "[-4, 3]", "got 4"});
  expect_error([&] { concat({a, b}, -5); }, {"concat", "'dim'", "got -5"});
  expect_error([] { concat({}, 0); }, {"concat", "empty"});
  expect_error([] { concat({Tensor::scalar(1.0f)}, 0); }, {"concat", "tensors[0]", "zero-dimensional"});
  expect_error([&] { concat({a, Tensor()}, 1); }, {"concat", "tensors[1]", "undefined"});
}

}  // namespace
}  // namespace engine
