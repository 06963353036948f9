// The CUDA caching allocator (kernels/cuda/allocator.h): size classes, reuse
// of a freed block on its own stream (and not on another), the statistics, a
// steady-state training loop that makes no cudaMalloc call, emptying the
// cache, and the out-of-memory error.
#include <gtest/gtest.h>

#ifdef ENGINE_WITH_CUDA
#include <cuda_runtime.h>

#include <limits>

#include "core/rng.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/stream.h"
#include "layers/optim.h"
#include "tests/cuda/cuda_test_util.h"

namespace engine {
namespace {

using testing::kCuda;

constexpr std::size_t kMiB = std::size_t{1} << 20;

TEST(CudaAllocator, SizeClasses) {
  // Pure arithmetic: runs without a GPU.
  EXPECT_EQ(cuda::round_allocation_size(0), 512u);
  EXPECT_EQ(cuda::round_allocation_size(1), 512u);
  EXPECT_EQ(cuda::round_allocation_size(512), 512u);
  EXPECT_EQ(cuda::round_allocation_size(513), 1024u);
  EXPECT_EQ(cuda::round_allocation_size(kMiB), kMiB);
  EXPECT_EQ(cuda::round_allocation_size(kMiB + 1), 2 * kMiB);
  EXPECT_EQ(cuda::round_allocation_size(3 * kMiB), 4 * kMiB);
  EXPECT_EQ(cuda::round_allocation_size(25690112), 26 * kMiB);  // a [128, 64, 28, 28] activation: 24.5 MiB
  EXPECT_THROW(cuda::round_allocation_size(std::numeric_limits<std::size_t>::max()), Error);
}

TEST(CudaAllocator, FreedBlockIsReusedOnItsStream) {
  ENGINE_SKIP_WITHOUT_CUDA();
  void* p = cuda::allocate(1000, 0);
  const cuda::AllocatorStats before = cuda::allocator_stats(0);
  cuda::deallocate(p);
  void* q = cuda::allocate(900, 0);  // the same size class (1024 B)
  EXPECT_EQ(q, p) << "a freed block should come back for the next request of its class";
  const cuda::AllocatorStats after = cuda::allocator_stats(0);
  EXPECT_EQ(after.cache_hits, before.cache_hits + 1);
  EXPECT_EQ(after.cuda_malloc_calls, before.cuda_malloc_calls);
  EXPECT_EQ(after.requested_bytes, before.requested_bytes - 1000 + 900);

  // Freed on the engine's stream: not handed to a request on another stream.
  cuda::deallocate(q);
  cudaStream_t other = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking), cudaSuccess);
  cuda::set_current_stream(other);
  void* r = cuda::allocate(900, 0);
  cuda::set_current_stream(nullptr);
  EXPECT_NE(r, p) << "a block freed on one stream must not be reused on another without synchronisation";
  cuda::deallocate(r);
  ASSERT_EQ(cudaStreamSynchronize(other), cudaSuccess);
  cuda::empty_cache(0);  // drop the block cached for `other` before the stream goes away
  ASSERT_EQ(cudaStreamDestroy(other), cudaSuccess);
}

TEST(CudaAllocator, Statistics) {
  ENGINE_SKIP_WITHOUT_CUDA();
  cuda::empty_cache(0);
  cuda::reset_peak_stats(0);
  const cuda::AllocatorStats s0 = cuda::allocator_stats(0);
  EXPECT_EQ(s0.cached_bytes, 0u);
  EXPECT_EQ(s0.reserved_bytes, s0.allocated_bytes);

  Tensor t = Tensor::empty({static_cast<int64_t>(3 * kMiB / 4)}, DType::F32, kCuda);  // 3 MiB -> class 4 MiB
  const cuda::AllocatorStats s1 = cuda::allocator_stats(0);
  EXPECT_EQ(s1.allocated_bytes, s0.allocated_bytes + 4 * kMiB);
  EXPECT_EQ(s1.requested_bytes, s0.requested_bytes + 3 * kMiB);
  EXPECT_EQ(s1.blocks_in_use, s0.blocks_in_use + 1);
  EXPECT_EQ(s1.cuda_malloc_calls, s0.cuda_malloc_calls + 1);
  EXPECT_EQ(s1.reserved_bytes, s0.reserved_bytes + 4 * kMiB);
  EXPECT_GE(s1.peak_allocated_bytes, s1.allocated_bytes);

  t = Tensor();  // freed: back into the cache, still reserved
  const cuda::AllocatorStats s2 = cuda::allocator_stats(0);
  EXPECT_EQ(s2.allocated_bytes, s0.allocated_bytes);
  EXPECT_EQ(s2.cached_bytes, 4 * kMiB);
  EXPECT_EQ(s2.reserved_bytes, s1.reserved_bytes);
  EXPECT_EQ(s2.peak_allocated_bytes, s1.peak_allocated_bytes);  // the peak remembers

  cuda::reset_peak_stats(0);
  EXPECT_EQ(cuda::allocator_stats(0).peak_allocated_bytes, s2.allocated_bytes);

  cuda::empty_cache(0);  // the cached block goes back to the driver
  const cuda::AllocatorStats s3 = cuda::allocator_stats(0);
  EXPECT_EQ(s3.reserved_bytes, s0.reserved_bytes);
  EXPECT_EQ(s3.cached_bytes, 0u);
  EXPECT_EQ(s3.cuda_free_calls, s2.cuda_free_calls + 1);
  EXPECT_NE(cuda::describe(s3).find("cudaMalloc calls"), std::string::npos);
}

TEST(CudaAllocator, SteadyStateTrainingLoopMakesNoCudaMalloc) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // A small network of the kernels of this backend: BN -> GELU -> pool,
  // concat, a per-channel scale, mse loss, backward, Adam.
  Generator gen(1);
  Tensor weight = Tensor::ones({6}, kCuda), bias = Tensor::zeros({6}, DType::F32, kCuda);
  Tensor gain = randn({8, 12, 1, 1}, gen, kCuda);  // per sample and channel
  for (Tensor* p : {&weight, &bias, &gain}) p->set_requires_grad();
  Tensor running_mean = Tensor::zeros({6}, DType::F32, kCuda), running_var = Tensor::ones({6}, kCuda);
  Adam optimizer({weight, bias, gain}, 1e-3);
  auto step = [&] {
    const Tensor x = randn({8, 6, 28, 28}, gen, kCuda);
    const Tensor target = rand({8, 12, 14, 14}, gen, kCuda);
    const Tensor h = gelu(batch_norm2d(x, weight, bias, running_mean, running_var, true));
    const Tensor features = concat({avg_pool2d(h, 2), avg_pool2d(x, 2)}, 1);
    const Tensor loss = mse_loss(mul(features, gain), target);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: the cache fills
  const cuda::AllocatorStats warm = cuda::allocator_stats(0);
  for (int i = 0; i < 5; ++i) step();
  const cuda::AllocatorStats steady = cuda::allocator_stats(0);
  EXPECT_EQ(steady.cuda_malloc_calls, warm.cuda_malloc_calls) << "a steady-state step must not call cudaMalloc";
  EXPECT_GT(steady.cache_hits, warm.cache_hits);
  EXPECT_EQ(steady.allocated_bytes, warm.allocated_bytes) << "a step must not leak";
}

TEST(CudaAllocator, OutOfMemoryIsAClearError) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const cuda::AllocatorStats before = cuda::allocator_stats(0);
  // 2^48 floats = 1 PiB: more than any GPU has.
  testing::expect_error_containing([] { Tensor::empty({int64_t{1} << 48}, DType::F32, kCuda); },
                                   {"CUDA out of memory", "1125899906842624 bytes", "cuda:0", "cudaMalloc",
                                    "after emptying the allocator's cache", "allocated", "reserved",
                                    "cudaMalloc calls", "free of"});
  const cuda::AllocatorStats after = cuda::allocator_stats(0);
  EXPECT_EQ(after.out_of_memory_retries, before.out_of_memory_retries + 1);
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
  // The allocator (and the CUDA context) still work.
  EXPECT_EQ(Tensor::full({5}, 2.0f, kCuda).to_vector(), std::vector<float>(5, 2.0f));
}

}  // namespace
}  // namespace engine
#endif  // ENGINE_WITH_CUDA
