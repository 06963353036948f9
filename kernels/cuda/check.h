// Check macros: every CUDA, cuDNN and cuBLAS call goes through one of these,
// which throw engine::Error with the call, file:line and the library's error
// string.
#pragma once
#include <cuda_runtime.h>

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
