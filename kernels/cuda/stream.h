// The stream every engine kernel and every cuDNN/cuBLAS call is issued on.
// One non-blocking stream per device, created on first use, so that a whole
// training step can later be captured into one CUDA graph (capture does not
// work on the legacy default stream). Host code never synchronises inside a
// step; copies to the host (Tensor::to, item) synchronise this stream.
#pragma once
#include <cuda_runtime.h>

namespace engine::cuda {

// The current stream for the current device (cudaGetDevice).
cudaStream_t current_stream();
// Overrides the current stream on this thread (nullptr restores the default).
void set_current_stream(cudaStream_t stream);

}  // namespace engine::cuda
