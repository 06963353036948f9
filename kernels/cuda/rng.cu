// Philox fills: thread j owns Philox block first + j and the elements it
// yields (four floats, or two int64s). Its writes are consecutive, and a
// warp's 32 threads write 32 consecutive groups: coalesced. Every operation
// on the way from counter to float is integer arithmetic or one of the
// correctly rounded, never-contracted float operations of philox.h
// (mul_rn, div_rn, sqrt_rn), so the device computes the CPU's bits.
#include "kernels/cuda/rng.h"

#include "kernels/common/philox.h"
#include "kernels/cuda/launch.cuh"

namespace engine::cuda {
namespace {

__global__ void uniform_fill_kernel(float* out, int64_t n, int64_t blocks, uint64_t seed, uint64_t first, float low,
                                    float high) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, b, blocks) {
    const philox::Block block = philox::random_block(seed, first + static_cast<uint64_t>(b));
    const int64_t start = 4 * b;
    for (int lane = 0; lane < 4 && start + lane < n; ++lane)
      out[start + lane] = philox::uniform_in(philox::uniform01(block.w[lane]), low, high);
  }
}

__global__ void normal_fill_kernel(float* out, int64_t n, int64_t blocks, uint64_t seed, uint64_t first, float mean,
                                   float stddev) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, b, blocks) {
    float z[4];
    philox::normal4(philox::random_block(seed, first + static_cast<uint64_t>(b)), z);
    const int64_t start = 4 * b;
    for (int lane = 0; lane < 4 && start + lane < n; ++lane)
      out[start + lane] = philox::normal_scaled(z[lane], mean, stddev);
  }
}

__global__ void randint_fill_kernel(int64_t* out, int64_t n, int64_t blocks, uint64_t seed, uint64_t first,
                                    int64_t low, uint64_t range) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, b, blocks) {
    const philox::Block block = philox::random_block(seed, first + static_cast<uint64_t>(b));
    for (int half = 0; half < 2 && 2 * b + half < n; ++half) {
      const uint64_t k = philox::below(philox::word64(block, half), range);
      out[2 * b + half] = static_cast<int64_t>(static_cast<uint64_t>(low) + k);
    }
  }
}

}  // namespace

void uniform_fill(float* out, int64_t n, uint64_t seed, uint64_t first_block, float low, float high) {
  if (n == 0) return;
  const int64_t blocks = ceil_div(n, 4);
  uniform_fill_kernel<<<grid_for(blocks), kThreads, 0, current_stream()>>>(out, n, blocks, seed, first_block, low,
                                                                           high);
  CUDA_CHECK_LAUNCH();
}

void normal_fill(float* out, int64_t n, uint64_t seed, uint64_t first_block, float mean, float stddev) {
  if (n == 0) return;
  const int64_t blocks = ceil_div(n, 4);
  normal_fill_kernel<<<grid_for(blocks), kThreads, 0, current_stream()>>>(out, n, blocks, seed, first_block, mean,
                                                                          stddev);
  CUDA_CHECK_LAUNCH();
}

void randint_fill(int64_t* out, int64_t n, uint64_t seed, uint64_t first_block, int64_t low, uint64_t range) {
  if (n == 0) return;
  const int64_t blocks = ceil_div(n, 2);
  randint_fill_kernel<<<grid_for(blocks), kThreads, 0, current_stream()>>>(out, n, blocks, seed, first_block, low,
                                                                           range);
  CUDA_CHECK_LAUNCH();
}

}  // namespace engine::cuda
