// Tensor basics: factories, views that share storage, copies, devices, errors.
#include <gtest/gtest.h>

#include "core/tensor.h"

namespace engine {
namespace {

TEST(Tensor, FactoriesAndMetadata) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(t.device(), Device::cpu());
  for (float v : t.to_vector()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(Tensor::full({2}, 7.0f).to_vector(), (std::vector<float>{7.0f, 7.0f}));
  EXPECT_EQ(Tensor::scalar(3.0f).item(), 3.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << "CPU storage is 64-byte aligned";
}

TEST(Tensor, ReshapeSharesStorage) {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor v = t.reshape({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 2}));
  EXPECT_TRUE(v.same_storage(t));
  v.data<float>()[0] = 42.0f;
  EXPECT_EQ(t.data<float>()[0], 42.0f);
  EXPECT_THROW(t.reshape({4, 2}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
}

TEST(Tensor, CloneCopies) {
  Tensor t = Tensor::from_vector({1, 2}, {2});
  Tensor c = t.clone();
  EXPECT_FALSE(c.same_storage(t));
  c.data<float>()[0] = 9.0f;
  EXPECT_EQ(t.data<float>()[0], 1.0f);
}

TEST(Tensor, ErrorsNameWhatWasWrong) {
  try {
    Tensor::from_vector({1, 2, 3}, {2, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 2]"), std::string::npos) << e.what();
  }
  Tensor i = Tensor::zeros({2}, DType::I64);
  EXPECT_THROW(i.data<float>(), Error);
  EXPECT_THROW(Tensor().shape(), Error);
  EXPECT_THROW(Tensor::zeros({2, -1}), Error);
}

TEST(Tensor, Int64RoundTrip) {
  Tensor t = Tensor::from_vector_i64({5, -7}, {2});
  EXPECT_EQ(t.to_vector_i64(), (std::vector<int64_t>{5, -7}));
  EXPECT_EQ(t.dtype(), DType::I64);
}

TEST(Tensor, ParseDevice) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_EQ(parse_device("cuda"), Device::cuda(0));
  EXPECT_EQ(parse_device("cuda:1"), Device::cuda(1));
  EXPECT_THROW(parse_device("gpu"), Error);
  EXPECT_THROW(parse_device("cuda:x"), Error);
}

TEST(Tensor, CudaRoundTripOrSkip) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device on this machine: host<->device copies untested here";
  Tensor t = Tensor::from_vector({1, 2, 3}, {3});
  Tensor d = t.to(Device::cuda());
  EXPECT_EQ(d.device(), Device::cuda());
  EXPECT_EQ(d.to(Device::cpu()).to_vector(), t.to_vector());
  Tensor z = Tensor::zeros({5}, DType::F32, Device::cuda());
  EXPECT_EQ(z.to_vector(), std::vector<float>(5, 0.0f));
}

TEST(Tensor, CudaWithoutDeviceIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  try {
    Tensor::zeros({2}, DType::F32, Device::cuda());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace engine
