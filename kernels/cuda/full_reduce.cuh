// The deterministic full reduction (launch.cuh explains the scheme): the sum
// over i < n of term(i), in double, by a partition that depends only on n.
// Used by sum, mse_loss and the scalar-operand backward of add/sub/mul.
// Device code: include from .cu files only.
#pragma once
#include "kernels/cuda/launch.cuh"

namespace engine::cuda {

constexpr int64_t kReduceMinChunk = 4096;  // at least this many elements per block (else one block suffices)
constexpr int64_t kReduceMaxChunks = 1024; // about one wave of blocks on an H100/H200 (132 SMs x 8)

// The partition: n elements in `chunks` chunks of `chunk` consecutive ones
// (the last may be shorter). A pure function of n.
inline int64_t reduce_chunk_count(int64_t n) { return std::clamp<int64_t>(ceil_div(n, kReduceMinChunk), 1, kReduceMaxChunks); }

// Level 1: block b sums term(i) over its chunk [b * chunk, min(n, (b + 1) * chunk)).
template <typename Term>
__global__ void chunk_sums_kernel(Term term, int64_t n, int64_t chunk, double* partials) {
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * chunk;
  const int64_t end = begin + chunk < n ? begin + chunk : n;
  double s = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += term(i);
  s = block_sum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// Level 2, one block: total = the chunk sums added by a fixed tree; then
//   accumulate ? out[0] += (float)(sign * total) : out[0] = (float)(total / divisor).
// (A template only so that every .cu file including this header gets its own copy.)
template <typename Real = double>
__global__ void finish_sum_kernel(const Real* partials, int64_t count, double divisor, float sign, bool accumulate,
                                  float* out) {
  Real s = 0.0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) s += partials[k];
  const Real total = block_sum(s);
  if (threadIdx.x == 0) {
    if (accumulate)
      out[0] += static_cast<float>(static_cast<double>(sign) * total);
    else
      out[0] = static_cast<float>(total / divisor);
  }
}

// The launcher: both levels on the current stream. out is a device pointer.
template <typename Term>
void full_sum(const Term& term, int64_t n, float* out, double divisor, float sign, bool accumulate) {
  const int64_t chunks = reduce_chunk_count(n);
  const int64_t chunk = ceil_div(n, chunks);
  Scratch partials(static_cast<std::size_t>(chunks) * sizeof(double));
  cudaStream_t stream = current_stream();
  chunk_sums_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(term, n, chunk, partials.as<double>());
  CUDA_CHECK_LAUNCH();
  finish_sum_kernel<<<1, kThreads, 0, stream>>>(partials.as<double>(), chunks, divisor, sign, accumulate, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace engine::cuda
