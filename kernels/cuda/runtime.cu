// CUDA device plumbing: see runtime.h. A caching allocator replaces raw_malloc
// in the CUDA-backend issue; until then every tensor is one cudaMalloc.
#include "kernels/cuda/runtime.h"

#include <cuda_runtime.h>

#include "kernels/cuda/check.h"

namespace engine::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" / "no device" error
    return 0;
  }
  return count;
}

void* raw_malloc(std::size_t bytes, int device) {
  CUDA_CHECK(cudaSetDevice(device));
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw Error(detail::concat_message("CUDA out of memory or error: cudaMalloc of ", bytes,
                                       " bytes on cuda:", device, " failed: ", cudaGetErrorString(status)));
  }
  return ptr;
}

void raw_free(void* ptr, int device) noexcept {
  if (ptr == nullptr) return;
  cudaSetDevice(device);
  cudaFree(ptr);
}

void copy_host_to_device(void* dst, const void* src, std::size_t bytes, int device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_device_to_host(void* dst, const void* src, std::size_t bytes, int device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void copy_device_to_device(void* dst, const void* src, std::size_t bytes, int device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

void memset_zero(void* dst, std::size_t bytes, int device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaMemset(dst, 0, bytes));
}

}  // namespace engine::cuda
