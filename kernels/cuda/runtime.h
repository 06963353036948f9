// CUDA device plumbing used by core/: device count, raw allocation, copies,
// memset. Host-side declarations only, so core/ compiles without nvcc.
// Everything here checks its CUDA call and throws engine-style messages with
// file:line (see check.h).
#pragma once
#include <cstddef>

namespace engine::cuda {

// Number of CUDA devices the runtime sees; 0 (never throws) when there is no
// driver or no GPU, so that CPU-only machines simply skip CUDA work.
int device_count();

void* raw_malloc(std::size_t bytes, int device);
void raw_free(void* ptr, int device) noexcept;

void copy_host_to_device(void* dst, const void* src, std::size_t bytes, int device);
void copy_device_to_host(void* dst, const void* src, std::size_t bytes, int device);
void copy_device_to_device(void* dst, const void* src, std::size_t bytes, int device);
void memset_zero(void* dst, std::size_t bytes, int device);

}  // namespace engine::cuda
