// Per-element math that both backends share (GELU and its derivative, the
// BatchNorm apply, the Adam update, Philox) is written once as an inline
// ENGINE_HOST_DEVICE function in kernels/common/: the CPU kernels call it in
// their loops, the CUDA kernels in their threads, and the CPU tests cover it.
#pragma once

#if defined(__CUDACC__)
#define ENGINE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define ENGINE_HOST_DEVICE inline
#endif
