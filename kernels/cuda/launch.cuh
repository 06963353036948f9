// What every CUDA kernel file of the engine shares: launch geometry, the
// grid-stride loop, deterministic block reductions, and scratch memory.
// Device code: include from .cu files only.
//
// How a kernel maps threads to data
// ---------------------------------
// A launch is a grid of blocks of kThreads threads. Thread t of block b has
// the global index  i = b * kThreads + t  and, in a GRID-STRIDE loop, handles
// elements i, i + S, i + 2S, ... with S = gridDim.x * kThreads, the number of
// threads in the grid. Neighbouring threads of a warp (32 threads executing
// in lockstep) touch neighbouring elements, so each warp's loads combine into
// a few wide memory transactions ("coalesced"). The grid is sized to cover the
// data once (capped at kMaxBlocks), so for most tensors each thread handles
// one element and the loop runs once.
//
// Deterministic reductions
// ------------------------
// Float addition is not associative, so a sum's bits depend on its order.
// GPU libraries often reduce with atomicAdd, whose order is whatever order
// the threads happen to arrive in: the result changes from run to run. The
// engine never does that. Every reduction here is a FIXED tree:
//   1. the data is split into a number of chunks that depends only on the
//      shape (never on the GPU or on timing); one block sums one chunk;
//   2. inside a block, thread t sums elements t, t + kThreads, ... in order,
//      in double; then block_sum combines the 256 thread sums by a fixed tree
//      (warp shuffles, then the warp sums);
//   3. a second kernel adds the chunk sums in index order.
// Same input, same shape: same bits, on every run and every GPU.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/stream.h"

namespace engine::cuda {

constexpr int kThreads = 256;                    // threads per block: 8 warps
constexpr int64_t kMaxBlocks = int64_t{1} << 20;  // grid cap; the grid-stride loop covers the rest

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks for a grid-stride loop over n elements, one element per thread.
inline unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::clamp<int64_t>(ceil_div(n, kThreads), 1, kMaxBlocks));
}

// True when 32-bit index arithmetic is safe for n elements: i < n, and i plus
// one grid stride (at most kMaxBlocks * kThreads = 2^28), stay below 2^31.
// Kernels that divide indices (i / cols) are templated on the index type:
// 32-bit division is several times cheaper than 64-bit on the GPU.
inline bool fits_int32(int64_t n) { return n <= (int64_t{1} << 30); }

// The grid-stride loop: for (Index i : first .. n step stride).
#define ENGINE_GRID_STRIDE_LOOP(Index, i, n)                                                        \
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<Index>(n); \
       i += static_cast<Index>(gridDim.x) * blockDim.x)

// Sum of `value` over the threads of the block, by a fixed tree; the result
// is valid in thread 0. blockDim.x must be a multiple of 32 (at most 1024)
// and every thread of the block must call it.
template <typename T>
__device__ T block_sum(T value) {
  __shared__ T warp_sums[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  // Within a warp: add the value 16 lanes up, then 8, 4, 2, 1 (a binary tree).
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / 32;
    value = lane < warps ? warp_sums[lane] : T(0);
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  __syncthreads();  // warp_sums may be reused by the next call
  return value;
}

// Device memory for one op's intermediate results (partial sums, per-channel
// factors), from the caching allocator and released at scope exit. The
// release is safe while kernels that use it are still queued: the block can
// only be reused by work queued later on the same stream.
class Scratch {
 public:
  explicit Scratch(std::size_t bytes) {
    CUDA_CHECK(cudaGetDevice(&device_));
    ptr_ = allocate(bytes, device_);
  }
  ~Scratch() { deallocate(ptr_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }

 private:
  int device_ = 0;
  void* ptr_ = nullptr;
};

}  // namespace engine::cuda
