// Raw memory for tensors. CPU memory is 64-byte aligned (one cache line, a
// full AVX-512 vector) so that the kernels may use aligned loads. CUDA memory
// comes from the CUDA backend (kernels/cuda), when it is built.
#pragma once
#include <cstddef>
#include <memory>

#include "core/device.h"

namespace engine {

// A block of bytes on one device, freed when the last owner lets go.
class Storage {
 public:
  Storage(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_;
};

// Statistics of the CPU allocator (for tests and the teaching pages).
struct CpuAllocatorStats {
  std::size_t bytes_in_use = 0;
  std::size_t peak_bytes_in_use = 0;
  std::size_t allocations = 0;
};
CpuAllocatorStats cpu_allocator_stats();

}  // namespace engine
