// The Philox streams on the GPU against the CPU's, bit for bit: uniform_,
// normal_, rand, randn and randint, for odd sizes (partial last blocks),
// non-zero generator offsets, several seeds and ranges, and consecutive
// fills that alternate between the devices.
#include <gtest/gtest.h>

#include <limits>

#include "core/rng.h"
#include "tests/cuda/cuda_test_util.h"

namespace engine {
namespace {

using testing::float_bits;
using testing::kCuda;

const int64_t kSizes[] = {1, 3, 4, 5, 1023, 100003};
const uint64_t kSeeds[] = {0, 42, 0xDEADBEEFCAFEF00Dull};

TEST(CudaRng, UniformBitForBit) {
  ENGINE_SKIP_WITHOUT_CUDA();
  for (uint64_t seed : kSeeds)
    for (int64_t n : kSizes)
      for (auto [low, high] : {std::pair{0.0f, 1.0f}, std::pair{-2.5f, 7.0f}, std::pair{1.0f, 2.0f}}) {
        Generator cpu_gen(seed), gpu_gen(seed);
        cpu_gen.set_offset(12345);
        gpu_gen.set_offset(12345);
        Tensor cpu = Tensor::empty({n}), gpu = Tensor::empty({n}, DType::F32, kCuda);
        uniform_(cpu, low, high, cpu_gen);
        uniform_(gpu, low, high, gpu_gen);
        EXPECT_EQ(float_bits(gpu), float_bits(cpu)) << "seed " << seed << " n " << n << " [" << low << ", " << high << ")";
        EXPECT_EQ(gpu_gen.offset(), cpu_gen.offset());
      }
}

TEST(CudaRng, NormalBitForBit) {
  ENGINE_SKIP_WITHOUT_CUDA();
  for (uint64_t seed : kSeeds)
    for (int64_t n : kSizes)
      for (auto [mean, stddev] : {std::pair{0.0f, 1.0f}, std::pair{3.0f, 0.5f}, std::pair{-1.0f, 0.0f}}) {
        Generator cpu_gen(seed), gpu_gen(seed);
        cpu_gen.set_offset(7);
        gpu_gen.set_offset(7);
        Tensor cpu = Tensor::empty({n}), gpu = Tensor::empty({n}, DType::F32, kCuda);
        normal_(cpu, mean, stddev, cpu_gen);
        normal_(gpu, mean, stddev, gpu_gen);
        EXPECT_EQ(float_bits(gpu), float_bits(cpu)) << "seed " << seed << " n " << n << " N(" << mean << ", " << stddev
                                                    << ")";
      }
}

TEST(CudaRng, RandAndRandnFactories) {
  ENGINE_SKIP_WITHOUT_CUDA();
  Generator cpu_gen(9), gpu_gen(9);
  EXPECT_EQ(float_bits(rand({3, 1, 28, 28}, gpu_gen, kCuda)), float_bits(rand({3, 1, 28, 28}, cpu_gen)));
  EXPECT_EQ(float_bits(randn({7, 5}, gpu_gen, kCuda)), float_bits(randn({7, 5}, cpu_gen)));
}

TEST(CudaRng, RandintBitForBit) {
  ENGINE_SKIP_WITHOUT_CUDA();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min(), kMax = std::numeric_limits<int64_t>::max();
  for (uint64_t seed : kSeeds)
    for (int64_t n : kSizes)
      for (auto [low, high] : {std::pair<int64_t, int64_t>{0, 10}, std::pair<int64_t, int64_t>{-5, 5},
                               std::pair<int64_t, int64_t>{0, 1}, std::pair<int64_t, int64_t>{0, 1000},
                               std::pair<int64_t, int64_t>{kMin, kMax}}) {
        Generator cpu_gen(seed), gpu_gen(seed);
        cpu_gen.set_offset(3);
        gpu_gen.set_offset(3);
        const Tensor cpu = randint(low, high, {n}, cpu_gen);
        const Tensor gpu = randint(low, high, {n}, gpu_gen, kCuda);
        EXPECT_EQ(gpu.to_vector_i64(), cpu.to_vector_i64()) << "seed " << seed << " n " << n << " [" << low << ", "
                                                            << high << ")";
        EXPECT_EQ(gpu_gen.offset(), cpu_gen.offset());
      }
}

TEST(CudaRng, AlternatingDevicesShareOneStream) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // One generator used on both devices in turn gives what the CPU alone gives.
  Generator mixed(5), cpu_only(5);
  const std::vector<uint32_t> a = float_bits(randn({33}, mixed, kCuda));
  const std::vector<uint32_t> b = float_bits(rand({17}, mixed));
  const std::vector<int64_t> c = randint(0, 100, {9}, mixed, kCuda).to_vector_i64();
  EXPECT_EQ(a, float_bits(randn({33}, cpu_only)));
  EXPECT_EQ(b, float_bits(rand({17}, cpu_only)));
  EXPECT_EQ(c, randint(0, 100, {9}, cpu_only).to_vector_i64());
}

}  // namespace
}  // namespace engine
