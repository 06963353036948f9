// CUDA device plumbing seen from the Tensor API: copies ordered with the
// kernels on the engine's non-blocking stream, fill_ and the factories on the
// device, BatchNorm2d's counter kept on the device, and the errors for a GPU
// that is not there.
#include <gtest/gtest.h>

#include "layers/layers.h"
#include "tests/cuda/cuda_test_util.h"

namespace engine {
namespace {

using testing::kCuda;

TEST(CudaDevice, CopiesAreOrderedWithKernels) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // 64 MiB: the kernels take long enough that an unordered copy would read stale bytes.
  const int64_t n = int64_t{1} << 24;
  for (int round = 0; round < 3; ++round) {
    const float value = 1.5f + static_cast<float>(round);
    const Tensor x = Tensor::full({n}, value, kCuda);         // fill kernel
    const Tensor y = scale(add(x, x), 0.25f);                  // two kernels
    const Tensor z = y.clone();                                // device-to-device copy
    const std::vector<float> host = z.to_vector();             // device-to-host copy
    ASSERT_EQ(host.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(host.front(), value * 0.5f);
    EXPECT_EQ(host[n / 2], value * 0.5f);
    EXPECT_EQ(host.back(), value * 0.5f);
  }
  // Host-to-device copy, then a kernel reading it.
  const std::vector<float> values(1000, 3.0f);
  EXPECT_EQ(sum(Tensor::from_vector(values, {1000}, kCuda)).item(), 3000.0f);
}

TEST(CudaDevice, FactoriesAndFill) {
  ENGINE_SKIP_WITHOUT_CUDA();
  EXPECT_EQ(Tensor::full({3, 7}, -2.5f, kCuda).to_vector(), std::vector<float>(21, -2.5f));
  EXPECT_EQ(Tensor::ones({5}, kCuda).to_vector(), std::vector<float>(5, 1.0f));
  EXPECT_EQ(Tensor::zeros({5}, DType::F32, kCuda).to_vector(), std::vector<float>(5, 0.0f));
  EXPECT_EQ(Tensor::zeros({2}, DType::I64, kCuda).to_vector_i64(), std::vector<int64_t>(2, 0));
  Tensor t = Tensor::empty({0}, DType::F32, kCuda);
  t.fill_(1.0f);  // nothing to fill, no launch
  EXPECT_EQ(Tensor::scalar(4.0f, kCuda).item(), 4.0f);
}

TEST(CudaDevice, BatchNormCounterCountsOnTheDevice) {
  ENGINE_SKIP_WITHOUT_CUDA();
  BatchNorm2d bn(3);
  bn.to(kCuda);
  const Tensor x = testing::random_tensor({2, 3, 4, 4}, 1).to(kCuda);
  for (int i = 0; i < 3; ++i) bn.forward(x);
  EXPECT_TRUE(bn.num_batches_tracked.device().is_cuda());
  EXPECT_EQ(bn.num_batches_tracked.to_vector_i64(), std::vector<int64_t>{3});
  bn.eval();
  bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked.to_vector_i64(), std::vector<int64_t>{3}) << "eval mode does not count";
}

TEST(CudaDevice, NonexistentDeviceIndexIsAClearError) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const int count = cuda_device_count();
  testing::expect_error_containing([&] { Tensor::zeros({2}, DType::F32, Device::cuda(count)); },
                                   {"cuda:" + std::to_string(count), "CUDA device(s)", "--device cpu"});
}

#ifdef ENGINE_WITH_CUDA
TEST(CudaDevice, MissingGpuIsAClearError) {
  // The opposite case: a CUDA build on a machine without a GPU (this one runs in CI).
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present: the missing-GPU message is not reachable";
  testing::expect_error_containing([] { Tensor::zeros({2}, DType::F32, kCuda); },
                                   {"cuda:0 requested", "no usable CUDA device", "--device cpu", "Device::cpu()"});
  testing::expect_error_containing([] { Tensor::from_vector({1.0f}, {1}).to(kCuda); }, {"no usable CUDA device"});
}
#endif

}  // namespace
}  // namespace engine
