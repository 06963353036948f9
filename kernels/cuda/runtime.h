// CUDA device plumbing used by core/: device count, raw allocation, copies,
// memset, and a guard that makes a device current. Host-side declarations
// only, so core/ compiles without nvcc. Everything here checks its CUDA call
// and throws engine::Error with file:line (see check.h).
//
// Ordering: every copy and memset here is issued on the device's current
// stream (stream.h), the stream all engine kernels run on, so it is ordered
// after the kernels that produced its source and before those that read its
// destination. Copies to the host then synchronise that stream (the host is
// about to read the bytes); copies to the device and memsets do not.
#pragma once
#include <cstddef>
#include <string>

namespace engine::cuda {

// Number of CUDA devices the runtime sees; 0 (never throws) when there is no
// driver or no GPU, so that CPU-only machines simply skip CUDA work.
int device_count();

// Throws engine::Error, saying why and how to run on the CPU instead, unless
// cuda:`device` exists. Called before the first allocation on a device.
void require_device(int device);

// Memory from the caching allocator (allocator.h), for `device`'s current
// stream; raw_free returns it to the allocator's cache.
void* raw_malloc(std::size_t bytes, int device);
void raw_free(void* ptr, int device) noexcept;

// Copies on the current stream of `device` (the device the device pointer
// lives on). copy_device_to_host returns when the bytes have arrived;
// copy_host_to_device returns once `src` may be reused (the driver has taken
// its copy); copy_device_to_device and memset_zero only enqueue.
void copy_host_to_device(void* dst, const void* src, std::size_t bytes, int device);
void copy_device_to_host(void* dst, const void* src, std::size_t bytes, int device);
void copy_device_to_device(void* dst, const void* src, std::size_t bytes, int device);
void memset_zero(void* dst, std::size_t bytes, int device);

// Waits until everything queued on `device`'s current stream has finished.
void synchronize(int device);

// Makes `device` current for its lifetime and restores the previous current
// device afterwards (cudaSetDevice is per host thread).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace engine::cuda
