// CUDA concat against the CPU backend: pure copies and one addition per
// gradient element, so the bits must match (no tolerance).
#include <gtest/gtest.h>

#include "tests/cuda/cuda_test_util.h"

namespace engine {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::kCuda;
using testing::random_leaf;
using testing::Tolerance;

TEST(CudaConcat, ChannelsAndOtherDims) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // The UNet's skip connection: along channels.
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return concat(in, 1); },
                          {random_leaf({2, 3, 7, 7}, 1), random_leaf({2, 5, 7, 7}, 2)}, Tolerance{}, Tolerance{},
                          "concat dim 1");
  // Three inputs, batch 1, one of them without gradient, an empty one.
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return concat(in, 1); },
      {random_leaf({1, 1, 5, 3}, 3), testing::random_tensor({1, 4, 5, 3}, 4), random_leaf({1, 0, 5, 3}, 5),
       random_leaf({1, 67, 5, 3}, 6)},
      Tolerance{}, Tolerance{}, "concat three inputs");
  for (int64_t dim : {0, 2, -1})
    expect_cuda_matches_cpu([dim](const std::vector<Tensor>& in) { return concat(in, dim); },
                            {random_leaf({3, 4, 5}, 7), random_leaf({3, 4, 5}, 8)}, Tolerance{}, Tolerance{},
                            "concat dim " + std::to_string(dim));
}

TEST(CudaConcat, Int64) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const Tensor a = Tensor::from_vector_i64({1, 2, 3, 4}, {2, 2}), b = Tensor::from_vector_i64({-5, 6}, {2, 1});
  const Tensor gpu = concat({a.to(kCuda), b.to(kCuda)}, 1);
  EXPECT_EQ(gpu.to_vector_i64(), (std::vector<int64_t>{1, 2, -5, 3, 4, 6}));
}

TEST(CudaConcat, MixedDevicesNameBoth) {
  ENGINE_SKIP_WITHOUT_CUDA();
  testing::expect_error_containing(
      [] { concat({Tensor::zeros({1, 2}), Tensor::zeros({1, 2}, DType::F32, kCuda)}, 0); },
      {"concat", "tensors[0]", "tensors[1]", "cpu", "cuda:0"});
}

}  // namespace
}  // namespace engine
