// CUDA sum, mean and mse_loss against the CPU backend.
//
// Tolerances: both devices sum in double and round once to float; only the
// order of the double additions differs (a fixed tree on the GPU, blocks of
// 4096 in a loop on the CPU), which moves the double result by ~n * 1e-16
// relative: the floats agree to one rounding step, rtol 2.4e-7 (2 ulp), with
// an atol for sums that cancel to near 0. The backward passes are the same
// float formulas on both devices: same bits, up to a fused multiply-add in
// mse's (pred - target) * g, hence 1 ulp there.
#include <gtest/gtest.h>

#include "tests/cuda/cuda_test_util.h"

namespace engine {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::kCuda;
using testing::random_leaf;
using testing::Tolerance;

constexpr Tolerance kSumTol{1e-6, 2.4e-7};

TEST(CudaReduce, SumAndMean) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // 1 element, one partial block, exactly one chunk, many chunks, more than
  // kReduceMaxChunks * kReduceMinChunk (chunks longer than the minimum).
  for (const Shape& shape : {Shape{1}, Shape{7, 13}, Shape{4096}, Shape{3, 99991}, Shape{1100, 4099}}) {
    const Tensor a = random_leaf(shape, 1);
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a}, kSumTol, Tolerance{},
                            "sum " + shape_str(shape));
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return mean(in[0]); }, {a}, kSumTol, Tolerance{},
                            "mean " + shape_str(shape));
  }
}

TEST(CudaReduce, SumOfEmptyIsZero) {
  ENGINE_SKIP_WITHOUT_CUDA();
  EXPECT_EQ(sum(Tensor::zeros({0, 5}, DType::F32, kCuda)).item(), 0.0f);
}

TEST(CudaReduce, LargeSumIsAccurate) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // As the CPU test: 1M values of 0.1 summed in double, not drifting in float.
  EXPECT_NEAR(sum(Tensor::full({1000, 1000}, 0.1f, kCuda)).item(), 100000.0f * 1.0000000015f, 0.01f);
}

TEST(CudaReduce, MseLossBothArguments) {
  ENGINE_SKIP_WITHOUT_CUDA();
  for (const Shape& shape : {Shape{1, 1, 28, 28}, Shape{3, 1, 5, 7}, Shape{17, 1, 28, 28}}) {
    const Tensor p = random_leaf(shape, 2), t = random_leaf(shape, 3);
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); }, {p, t}, kSumTol,
                            Tolerance{0.0, 2e-7}, "mse_loss " + shape_str(shape));
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); }, {p, t.detach()},
                            kSumTol, Tolerance{0.0, 2e-7}, "mse_loss, pred only " + shape_str(shape));
  }
}

TEST(CudaReduce, SameBitsEveryRun) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const Tensor a = testing::random_tensor({1100, 4099}, 4).to(kCuda);
  const Tensor b = testing::random_tensor({1100, 4099}, 5).to(kCuda);
  const float s = sum(a).item(), m = mse_loss(a, b).item();
  for (int run = 0; run < 3; ++run) {
    EXPECT_EQ(sum(a).item(), s);
    EXPECT_EQ(mse_loss(a, b).item(), m);
  }
}

TEST(CudaReduce, MixedDevicesNameBoth) {
  ENGINE_SKIP_WITHOUT_CUDA();
  testing::expect_error_containing(
      [] { mse_loss(Tensor::zeros({4}), Tensor::zeros({4}, DType::F32, kCuda)); },
      {"mse_loss", "'pred'", "'target'", "cpu", "cuda:0"});
}

}  // namespace
}  // namespace engine
