// Check macros: every CUDA, cuDNN and cuBLAS call goes through one of these,
// which throw engine::Error with the call, file:line and the library's error
// string, e.g.
//   CUDA error: cudaMalloc(&ptr, bytes) failed at kernels/cuda/allocator.cu:120:
//   cudaErrorMemoryAllocation (out of memory)
//
//   CUDA_CHECK(cudaMemcpyAsync(...));
//   CUDNN_CHECK(cudnnConvolutionForward(...));
//   CUBLAS_CHECK(cublasSgemm(...));
//   my_kernel<<<grid, block, 0, stream>>>(...); CUDA_CHECK_LAUNCH();
//
// A kernel that faults reports its error at a later call (the next
// synchronising one), not at its launch: run under compute-sanitizer, or
// with CUDA_LAUNCH_BLOCKING=1, to find the launch that faulted.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "core/error.h"

#define CUDA_CHECK(call)                                                                  \
  do {                                                                                    \
    cudaError_t engine_cuda_status_ = (call);                                             \
    if (engine_cuda_status_ != cudaSuccess)                                               \
      throw ::engine::Error(::engine::detail::concat_message(                             \
          "CUDA error: ", #call, " failed at ", __FILE__, ":", __LINE__, ": ",            \
          cudaGetErrorName(engine_cuda_status_), " (", cudaGetErrorString(engine_cuda_status_), ")")); \
  } while (0)

// After a kernel launch: reports launch-configuration errors at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

// cuDNN calls return a cudnnStatus_t; cudnnGetErrorString names it
// (e.g. CUDNN_STATUS_BAD_PARAM). For the BAD_PARAM family cuDNN 9 can say
// more through cudnnGetLastErrorString, which we append when it has text.
#define CUDNN_CHECK(call)                                                                              \
  do {                                                                                                 \
    cudnnStatus_t engine_cudnn_status_ = (call);                                                       \
    if (engine_cudnn_status_ != CUDNN_STATUS_SUCCESS) {                                                \
      char engine_cudnn_detail_[512] = {0};                                                            \
      cudnnGetLastErrorString(engine_cudnn_detail_, sizeof(engine_cudnn_detail_));                     \
      throw ::engine::Error(::engine::detail::concat_message(                                          \
          "cuDNN error: ", #call, " failed at ", __FILE__, ":", __LINE__, ": ",                        \
          cudnnGetErrorString(engine_cudnn_status_),                                                   \
          engine_cudnn_detail_[0] != 0 ? " (" : "", engine_cudnn_detail_,                              \
          engine_cudnn_detail_[0] != 0 ? ")" : ""));                                                   \
    }                                                                                                  \
  } while (0)

// cuBLAS calls return a cublasStatus_t; cublasGetStatusName gives its enum
// name (CUBLAS_STATUS_INVALID_VALUE), cublasGetStatusString a sentence.
#define CUBLAS_CHECK(call)                                                                              \
  do {                                                                                                  \
    cublasStatus_t engine_cublas_status_ = (call);                                                      \
    if (engine_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                 \
      throw ::engine::Error(::engine::detail::concat_message(                                           \
          "cuBLAS error: ", #call, " failed at ", __FILE__, ":", __LINE__, ": ",                        \
          cublasGetStatusName(engine_cublas_status_), " (", cublasGetStatusString(engine_cublas_status_), \
          ")"));                                                                                        \
  } while (0)
