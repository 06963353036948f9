#include "core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>

#include "core/error.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace engine {
namespace {

constexpr std::size_t kCpuAlignment = 64;

std::mutex g_stats_mutex;
CpuAllocatorStats g_cpu_stats;

void* cpu_allocate(std::size_t bytes) {
  // aligned_alloc wants a size that is a multiple of the alignment; never 0.
  std::size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  if (rounded == 0) rounded = kCpuAlignment;
  void* ptr = std::aligned_alloc(kCpuAlignment, rounded);
  ENGINE_CHECK(ptr != nullptr, "out of memory: CPU allocation of ", bytes, " bytes failed (", 
               g_cpu_stats.bytes_in_use, " bytes already in use by tensors)");
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  g_cpu_stats.bytes_in_use += bytes;
  g_cpu_stats.allocations += 1;
  if (g_cpu_stats.bytes_in_use > g_cpu_stats.peak_bytes_in_use)
    g_cpu_stats.peak_bytes_in_use = g_cpu_stats.bytes_in_use;
  return ptr;
}

void cpu_free(void* ptr, std::size_t bytes) noexcept {
  std::free(ptr);
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  g_cpu_stats.bytes_in_use -= bytes;
}

}  // namespace

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (device.is_cpu()) {
    data_ = cpu_allocate(bytes);
  } else {
#ifdef ENGINE_WITH_CUDA
    ENGINE_CHECK(device.index < cuda::device_count(), "cannot allocate on ", device.str(), ": ",
                 cuda::device_count(), " CUDA device(s) present");
    data_ = cuda::raw_malloc(bytes == 0 ? 1 : bytes, device.index);
#else
    throw Error("cannot allocate on " + device.str() + ": this build has no CUDA backend "
                "(configure with nvcc available and -DENGINE_WITH_CUDA=ON)");
#endif
  }
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    cpu_free(data_, bytes_);
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::raw_free(data_, device_.index);
#endif
  }
}

CpuAllocatorStats cpu_allocator_stats() {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  return g_cpu_stats;
}

}  // namespace engine
