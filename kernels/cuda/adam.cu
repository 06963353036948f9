// The multi-tensor Adam kernel. Block b of the launch finds its tensor by a
// binary search of b among the tensors' first_chunk values (ascending, set by
// plan_adam_chunks), then updates chunk b - first_chunk of that tensor:
// elements [chunk * kAdamChunk, min(numel, (chunk + 1) * kAdamChunk)), thread
// t taking elements t, t + 256, ... Every element is independent: the result
// does not depend on the partition, and matches the single-tensor kernel.
#include "kernels/cuda/adam.h"

#include "kernels/cuda/launch.cuh"

namespace engine::cuda {
namespace {

// The tensor t with tensors[t].first_chunk <= chunk < tensors[t + 1].first_chunk.
__device__ int64_t tensor_of_chunk(const AdamTensor* tensors, int64_t count, int64_t chunk) {
  int64_t lo = 0, hi = count - 1;  // invariant: the answer is in [lo, hi]
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (tensors[mid].first_chunk <= chunk)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

__global__ void adam_multi_tensor_kernel(const AdamTensor* tensors, int64_t count,
                                         const AdamStepConstants* constants, int64_t total_chunks) {
  for (int64_t chunk = blockIdx.x; chunk < total_chunks; chunk += gridDim.x) {
    const AdamTensor t = tensors[tensor_of_chunk(tensors, count, chunk)];
    const AdamStepConstants c = constants[t.constants_index];
    const int64_t begin = (chunk - t.first_chunk) * kAdamChunk;
    const int64_t end = begin + kAdamChunk < t.numel ? begin + kAdamChunk : t.numel;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
      adam_update(t.param[i], t.grad[i], t.exp_avg[i], t.exp_avg_sq[i], c);
  }
}

__global__ void adam_single_kernel(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                                   AdamStepConstants c) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) adam_update(param[i], grad[i], exp_avg[i], exp_avg_sq[i], c);
}

}  // namespace

int64_t plan_adam_chunks(AdamTensor* tensors, int64_t count) {
  int64_t total = 0;
  for (int64_t t = 0; t < count; ++t) {
    tensors[t].first_chunk = total;
    total += ceil_div(tensors[t].numel, kAdamChunk);
  }
  return total;
}

void adam_step_multi_tensor(const AdamTensor* tensors, int64_t count, const AdamStepConstants* constants,
                            int64_t total_chunks) {
  if (count == 0 || total_chunks == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min(total_chunks, kMaxBlocks));
  adam_multi_tensor_kernel<<<blocks, kThreads, 0, current_stream()>>>(tensors, count, constants, total_chunks);
  CUDA_CHECK_LAUNCH();
}

void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
               const AdamStepConstants& c) {
  if (n == 0) return;
  adam_single_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(param, grad, exp_avg, exp_avg_sq, n, c);
  CUDA_CHECK_LAUNCH();
}

}  // namespace engine::cuda
