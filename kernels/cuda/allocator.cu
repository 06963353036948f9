// The CUDA caching allocator: see allocator.h for the design.
//
// Data structures (all behind one mutex):
//   blocks_      every block obtained from cudaMalloc and not yet cudaFree'd,
//                by pointer: its device, stream, size class, whether in use
//   free_lists_  for each (device, stream, size class) the cached blocks, a
//                stack (LIFO): the most recently freed block is reused first,
//                which keeps a loop's working set in the GPU's L2 cache and
//                makes "free, then allocate the same size" return the same
//                pointer (tested).
//   stats_       the counters of each device
#include "kernels/cuda/allocator.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace engine::cuda {
namespace {

constexpr std::size_t kSmallLimit = std::size_t{1} << 20;  // 1 MiB: the end of the small classes
constexpr std::size_t kSmallRound = 512;                   // small classes: multiples of 512 B
constexpr std::size_t kLargeRound = std::size_t{2} << 20;  // large classes: multiples of 2 MiB

std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

struct Block {
  int device = 0;
  cudaStream_t stream = nullptr;
  std::size_t size = 0;       // the size class (what cudaMalloc was asked for)
  std::size_t requested = 0;  // what the current owner asked for (0 while cached)
  bool in_use = false;
};

// A free list is identified by where its blocks may be reused.
struct FreeListKey {
  int device;
  cudaStream_t stream;
  std::size_t size;
  bool operator<(const FreeListKey& other) const {
    return std::tie(device, stream, size) < std::tie(other.device, other.stream, other.size);
  }
};

class CachingAllocator {
 public:
  void* allocate(std::size_t bytes, int device) {
    const std::size_t size = round_allocation_size(bytes);
    DeviceGuard guard(device);
    cudaStream_t stream = current_stream();

    std::lock_guard<std::mutex> lock(mutex_);
    AllocatorStats& stats = stats_for(device);

    // 1. A cached block of this class, freed on this stream.
    auto list = free_lists_.find({device, stream, size});
    if (list != free_lists_.end() && !list->second.empty()) {
      void* ptr = list->second.back();
      list->second.pop_back();
      Block& block = blocks_.at(ptr);
      block.in_use = true;
      block.requested = bytes;
      stats.cached_bytes -= size;
      stats.cache_hits += 1;
      record_allocation(stats, block);
      return ptr;
    }

    // 2. A new block from the driver; on out-of-memory, empty the cache and retry once.
    void* ptr = nullptr;
    cudaError_t status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the (non-sticky) error before trying again
      stats.out_of_memory_retries += 1;
      release_cached_blocks(device);
      status = cudaMalloc(&ptr, size);
    }
    if (status != cudaSuccess) {
      cudaGetLastError();
      std::size_t free_bytes = 0, total_bytes = 0;
      const bool have_info = cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess;
      if (!have_info) cudaGetLastError();
      const bool out_of_memory = status == cudaErrorMemoryAllocation;
      throw Error(detail::concat_message(
          out_of_memory ? "CUDA out of memory: " : "CUDA error: ", "cannot allocate ", format_bytes(bytes), " (", bytes,
          " bytes, size class ", format_bytes(size), ") on cuda:", device, ": cudaMalloc failed with ",
          cudaGetErrorName(status), " (", cudaGetErrorString(status), ")",
          out_of_memory ? " even after emptying the allocator's cache" : "", ". Allocator: ", describe(stats),
          have_info ? detail::concat_message(". Device: ", format_bytes(free_bytes), " free of ",
                                             format_bytes(total_bytes))
                    : std::string(),
          out_of_memory ? ". Use a smaller batch size, or free tensors that are no longer needed." : ""));
    }
    stats.cuda_malloc_calls += 1;
    stats.reserved_bytes += size;
    if (stats.reserved_bytes > stats.peak_reserved_bytes) stats.peak_reserved_bytes = stats.reserved_bytes;
    Block& block = blocks_[ptr];
    block = Block{device, stream, size, bytes, true};
    record_allocation(stats, block);
    return ptr;
  }

  void deallocate(void* ptr) noexcept {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = blocks_.find(ptr);
    if (found == blocks_.end() || !found->second.in_use) {
      // A bug in the engine (double free or a foreign pointer); never throw from here.
      std::fprintf(stderr, "engine: CUDA allocator: deallocate(%p) of a block that is not in use (ignored)\n", ptr);
      return;
    }
    Block& block = found->second;
    AllocatorStats& stats = stats_for(block.device);
    stats.allocated_bytes -= block.size;
    stats.requested_bytes -= block.requested;
    stats.blocks_in_use -= 1;
    stats.cached_bytes += block.size;
    block.in_use = false;
    block.requested = 0;
    free_lists_[{block.device, block.stream, block.size}].push_back(ptr);
  }

  AllocatorStats stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_for(device);
  }

  void reset_peaks(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    AllocatorStats& stats = stats_for(device);
    stats.peak_allocated_bytes = stats.allocated_bytes;
    stats.peak_reserved_bytes = stats.reserved_bytes;
  }

  void empty_cache(int device) {
    DeviceGuard guard(device);
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_blocks(device);
  }

 private:
  AllocatorStats& stats_for(int device) {
    if (device >= static_cast<int>(stats_.size())) stats_.resize(static_cast<std::size_t>(device) + 1);
    return stats_[static_cast<std::size_t>(device)];
  }

  static void record_allocation(AllocatorStats& stats, const Block& block) {
    stats.allocations += 1;
    stats.blocks_in_use += 1;
    stats.allocated_bytes += block.size;
    stats.requested_bytes += block.requested;
    if (stats.allocated_bytes > stats.peak_allocated_bytes) stats.peak_allocated_bytes = stats.allocated_bytes;
  }

  // cudaFree's the cached blocks of `device` (caller holds the lock and has
  // made `device` current). cudaFree waits for the device to finish its
  // queued work, so blocks freed while kernels still used them are safe.
  void release_cached_blocks(int device) {
    AllocatorStats& stats = stats_for(device);
    for (auto list = free_lists_.begin(); list != free_lists_.end();) {
      if (list->first.device != device) {
        ++list;
        continue;
      }
      for (void* ptr : list->second) {
        const std::size_t size = blocks_.at(ptr).size;
        CUDA_CHECK(cudaFree(ptr));
        blocks_.erase(ptr);
        stats.cuda_free_calls += 1;
        stats.reserved_bytes -= size;
        stats.cached_bytes -= size;
      }
      list = free_lists_.erase(list);
    }
  }

  std::mutex mutex_;
  std::unordered_map<void*, Block> blocks_;
  std::map<FreeListKey, std::vector<void*>> free_lists_;
  std::vector<AllocatorStats> stats_;
};

// Never destroyed: tensors held in static objects may be freed after main
// returns, and must still find their allocator (the driver reclaims the
// memory at process exit).
CachingAllocator& the_allocator() {
  static CachingAllocator* allocator = new CachingAllocator();
  return *allocator;
}

}  // namespace

std::size_t round_allocation_size(std::size_t bytes) {
  ENGINE_CHECK(bytes <= std::numeric_limits<std::size_t>::max() - kLargeRound,
               "CUDA out of memory: cannot allocate ", bytes, " bytes (larger than any device)");
  if (bytes == 0) return kSmallRound;
  if (bytes <= kSmallLimit) return round_up(bytes, kSmallRound);
  return round_up(bytes, kLargeRound);
}

void* allocate(std::size_t bytes, int device) { return the_allocator().allocate(bytes, device); }
void deallocate(void* ptr) noexcept { the_allocator().deallocate(ptr); }
AllocatorStats allocator_stats(int device) { return the_allocator().stats(device); }
void reset_peak_stats(int device) { the_allocator().reset_peaks(device); }
void empty_cache(int device) { the_allocator().empty_cache(device); }

std::string format_bytes(std::size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 6) {
    value /= 1024.0;
    ++unit;
  }
  char text[64];
  if (unit == 0)
    std::snprintf(text, sizeof text, "%zu B", bytes);
  else
    std::snprintf(text, sizeof text, "%.2f %s", value, units[unit]);
  return text;
}

std::string describe(const AllocatorStats& s) {
  return detail::concat_message("allocated ", format_bytes(s.allocated_bytes), " in ", s.blocks_in_use,
                                " blocks (peak ", format_bytes(s.peak_allocated_bytes), "), reserved ",
                                format_bytes(s.reserved_bytes), " (cached ", format_bytes(s.cached_bytes), ", peak ",
                                format_bytes(s.peak_reserved_bytes), "), ", s.cuda_malloc_calls, " cudaMalloc calls");
}

}  // namespace engine::cuda
