// Storage, and the CPU caching allocator: see allocator.h for the design.
//
// Data structures of the cache (all behind one mutex):
//   cache_order_  every cached block, in the order it was freed: the front is
//                 the oldest, the first to go back to the system at the cap
//   free_lists_   for each size class its cached blocks, a stack (LIFO): the
//                 most recently freed block is reused first, which is still
//                 warm in the CPU caches and makes "free, then allocate the
//                 same size" return the same pointer (tested). The entries
//                 point into cache_order_, so a hit removes a block from both
//                 in O(1).
// Within one class both orders agree (both append at free time), so the
// oldest block overall is also the bottom of its class's stack.
#include "core/allocator.h"

#include <sanitizer/asan_interface.h>  // no-op macros unless built with AddressSanitizer
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <list>
#include <mutex>
#include <new>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace engine {
namespace {

constexpr std::size_t kCpuAlignment = 64;
constexpr std::size_t kSmallLimit = std::size_t{1} << 20;   // 1 MiB: the end of the small classes
constexpr std::size_t kLargeGranule = std::size_t{64} << 10;  // large classes: multiples of 64 KiB

std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// The size class of a request already known to be representable.
std::size_t size_class(std::size_t bytes) {
  if (bytes == 0) return kCpuAlignment;  // aligned_alloc never gets 0: every Storage has a unique address
  if (bytes <= kSmallLimit) return round_up(bytes, kCpuAlignment);
  return round_up(bytes, kLargeGranule);
}

// A quarter of physical RAM (see allocator.h); 2 GiB where the system does not say.
std::size_t default_cache_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return std::size_t{2} << 30;
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page_size) / 4;
}

std::size_t cache_limit_from_environment() {
  const char* text = std::getenv("ENGINE_CPU_CACHE_BYTES");
  if (text == nullptr || *text == '\0') return default_cache_limit();
  const std::string_view value(text);
  std::size_t bytes = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), bytes);
  ENGINE_CHECK(error == std::errc() && end == value.data() + value.size(),
               "ENGINE_CPU_CACHE_BYTES: expected a byte count (e.g. 4294967296; 0 disables the CPU allocator's "
               "cache), got '", value, "'");
  return bytes;
}

// One cached block: where it is and its size class.
struct CachedBlock {
  void* ptr;
  std::size_t size;
};
using CacheOrder = std::list<CachedBlock>;

class CpuCachingAllocator {
 public:
  CpuCachingAllocator() { stats_.cache_limit_bytes = cache_limit_from_environment(); }

  void* allocate(std::size_t bytes) {
    const std::size_t size = cpu_allocation_size_class(bytes);

    // 1. A cached block of this class.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (void* ptr = take_cached_block(size)) {
        stats_.cache_hits += 1;
        record_allocation(bytes);
        return ptr;
      }
    }

    // 2. A new block from the system; when that fails, empty the cache and retry once.
    void* ptr = std::aligned_alloc(kCpuAlignment, size);
    if (ptr == nullptr) {
      empty_cache();
      ptr = std::aligned_alloc(kCpuAlignment, size);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ENGINE_CHECK(ptr != nullptr, "out of memory: CPU allocation of ", bytes, " bytes (size class ", size,
                 ") failed even after emptying the allocator's cache. Allocator: ", stats_.bytes_in_use,
                 " bytes in use by tensors (peak ", stats_.peak_bytes_in_use, "), ", stats_.bytes_cached,
                 " bytes cached, ", stats_.allocations, " allocations (", stats_.cache_hits, " from the cache, ",
                 stats_.system_allocations, " from the system)");
    stats_.system_allocations += 1;
    record_allocation(bytes);
    return ptr;
  }

  // Caches the block, or frees it when it cannot be cached (caching off, or
  // a block larger than the cap). Never throws: it runs in ~Storage.
  void deallocate(void* ptr, std::size_t bytes) noexcept {
    const std::size_t size = size_class(bytes);
    CacheOrder evicted;
    bool cached = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.bytes_in_use -= bytes;
      if (size <= stats_.cache_limit_bytes) {
        evict_oldest_until(stats_.cache_limit_bytes - size, evicted);
        cached = cache_block(ptr, size);
      }
    }
    release(evicted);  // munmap outside the lock: it may take a while for large blocks
    if (!cached) std::free(ptr);
  }

  void set_cache_limit(std::size_t limit) {
    CacheOrder evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.cache_limit_bytes = limit;
      evict_oldest_until(limit, evicted);
    }
    release(evicted);
  }

  void empty_cache() {
    CacheOrder evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      evict_oldest_until(0, evicted);
    }
    release(evicted);
  }

  CpuAllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  // The following run with mutex_ held.

  void record_allocation(std::size_t bytes) {
    stats_.allocations += 1;
    stats_.bytes_in_use += bytes;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

  // The most recently freed block of class `size`, removed from the cache; null if none.
  void* take_cached_block(std::size_t size) {
    auto list = free_lists_.find(size);
    if (list == free_lists_.end() || list->second.empty()) return nullptr;
    const CacheOrder::iterator block = list->second.back();
    list->second.pop_back();
    void* ptr = block->ptr;
    cache_order_.erase(block);
    stats_.bytes_cached -= size;
    ASAN_UNPOISON_MEMORY_REGION(ptr, size);
    return ptr;
  }

  // Adds a freed block to the cache; false when the bookkeeping itself cannot
  // allocate (then the caller frees the block instead).
  bool cache_block(void* ptr, std::size_t size) noexcept {
    try {
      std::vector<CacheOrder::iterator>& list = free_lists_[size];
      list.reserve(list.size() + 1);  // may throw: do it before touching cache_order_
      cache_order_.push_back({ptr, size});
      list.push_back(std::prev(cache_order_.end()));
    } catch (const std::bad_alloc&) {
      return false;
    }
    stats_.bytes_cached += size;
    ASAN_POISON_MEMORY_REGION(ptr, size);  // a use after free of a tensor is still an error
    return true;
  }

  // Moves the oldest cached blocks into `evicted` until at most `target`
  // bytes are cached. Moving list nodes (splice) allocates nothing.
  void evict_oldest_until(std::size_t target, CacheOrder& evicted) noexcept {
    while (stats_.bytes_cached > target) {
      const CacheOrder::iterator oldest = cache_order_.begin();
      std::vector<CacheOrder::iterator>& list = free_lists_.find(oldest->size)->second;
      list.erase(list.begin());  // the bottom of its class's stack (see the top of this file); rare, so O(n) is fine
      stats_.bytes_cached -= oldest->size;
      evicted.splice(evicted.end(), cache_order_, oldest);
    }
  }

  // Returns evicted blocks to the system (without the lock: nobody else can reach them).
  static void release(const CacheOrder& evicted) noexcept {
    for (const CachedBlock& block : evicted) {
      ASAN_UNPOISON_MEMORY_REGION(block.ptr, block.size);
      std::free(block.ptr);
    }
  }

  std::mutex mutex_;
  CpuAllocatorStats stats_;
  CacheOrder cache_order_;
  std::unordered_map<std::size_t, std::vector<CacheOrder::iterator>> free_lists_;
};

// Never destroyed: tensors held in static objects may be freed after main
// returns, and must still find their allocator (the cached blocks are
// reclaimed by the system at process exit).
CpuCachingAllocator& cpu_allocator() {
  static CpuCachingAllocator* allocator = new CpuCachingAllocator();
  return *allocator;
}

}  // namespace

std::size_t cpu_allocation_size_class(std::size_t bytes) {
  ENGINE_CHECK(bytes <= std::numeric_limits<std::size_t>::max() - kLargeGranule, "out of memory: CPU allocation of ",
               bytes, " bytes is larger than any machine's memory");
  return size_class(bytes);
}

CpuAllocatorStats cpu_allocator_stats() { return cpu_allocator().stats(); }
void cpu_allocator_empty_cache() { cpu_allocator().empty_cache(); }
void cpu_allocator_set_cache_limit(std::size_t bytes) { cpu_allocator().set_cache_limit(bytes); }

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (device.is_cpu()) {
    data_ = cpu_allocator().allocate(bytes);
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
    cpu_allocator().deallocate(data_, bytes_);
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::raw_free(data_, device_.index);
#endif
  }
}

}  // namespace engine
