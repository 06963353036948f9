// Raw memory for tensors. CPU memory is 64-byte aligned (one cache line, a
// full AVX-512 vector) so that the kernels may use aligned loads. CUDA memory
// comes from the CUDA backend's caching allocator (kernels/cuda/allocator.h),
// when it is built.
//
// The CPU allocator caches. A training step frees and re-allocates the same
// tensor sizes every step (activations, gradients). Handing a 25 MB block back
// to the system and asking for a fresh one costs more than the bookkeeping
// suggests: the kernel unmaps the pages (munmap), and every page of the new
// block faults on first touch and is cleared by the kernel before the tensor
// sees it. So a freed block is kept in a cache and handed out again to the
// next request of its size class; after the first step, a loop that repeats
// its sizes is served from the cache.
//
// Size classes. A request of `bytes` is served by a block of its class:
//     bytes <= 1 MiB:  a multiple of 64 B     (small: biases, BatchNorm stats)
//     bytes  > 1 MiB:  a multiple of 64 KiB   (large: activations, gradients)
// and a cached block is reused only for a request of exactly its class, never
// split. 64 B is the alignment, which aligned_alloc demands as a size multiple
// anyway, so small classes waste nothing beyond what the system already did.
// Large classes are coarser so that their count stays small, and the waste
// stays bounded: under 64 KiB per block, at most 1/16 just above 1 MiB and
// 0.26% for a 25 MB activation. (The GPU allocator's 2 MiB granule would
// waste up to 8% of such an activation here, in bytes that count against the
// cache's cap, and buy nothing: a training loop repeats its exact sizes.)
//
// The cap. Cached bytes are limited; a free that would exceed the limit first
// returns the oldest cached blocks (least recently freed) to the system. In a
// training loop the cache never holds more than one step's freed tensors; the
// cap matters when sizes change (evaluation at another batch size, a smaller
// last batch) and classes that are no longer asked for pile up. Oldest first
// evicts exactly those. The default is a quarter of physical RAM: it scales
// with the machine (a fixed few GiB would evict a large model's working set
// every step on a big server) and leaves three quarters to live tensors, the
// dataset and other processes. The environment variable ENGINE_CPU_CACHE_BYTES
// (a byte count, read once, at the first CPU allocation) overrides it; 0
// disables caching, so that every free goes straight back to the system.
//
// Out of memory: when aligned_alloc fails, the allocator returns every cached
// block to the system and tries once more; if that fails too it throws
// engine::Error naming the requested size and the statistics.
//
// Contents: a block from the cache holds whatever its last tensor wrote, and
// a fresh one whatever the system gives. Tensor::empty promises nothing;
// Tensor::zeros fills. Under AddressSanitizer a cached block is poisoned, so
// a use after free of a tensor's memory is still reported.
//
// Thread safety: one mutex around the cache and the statistics; allocation is
// per tensor, not per element, so it is never contended in a hot loop.
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
// bytes_in_use counts what live tensors asked for; bytes_cached counts the
// size classes of the blocks kept for reuse, the memory the cache holds.
struct CpuAllocatorStats {
  std::size_t bytes_in_use = 0;        // requested bytes of live CPU Storage
  std::size_t peak_bytes_in_use = 0;   // maximum of bytes_in_use since start
  std::size_t allocations = 0;         // CPU Storage allocations that succeeded
  std::size_t bytes_cached = 0;        // freed blocks kept for reuse (never above cache_limit_bytes)
  std::size_t cache_hits = 0;          // allocations served from the cache
  std::size_t system_allocations = 0;  // blocks obtained from the system (aligned_alloc)
  std::size_t cache_limit_bytes = 0;   // the cap on bytes_cached; 0: caching is off
};
CpuAllocatorStats cpu_allocator_stats();

// The size class of a request (see above): the size of the block that serves
// it. Throws for sizes no machine can hold (near SIZE_MAX).
std::size_t cpu_allocation_size_class(std::size_t bytes);

// Returns every cached CPU block to the system; blocks in use stay.
void cpu_allocator_empty_cache();

// Sets the cap on cached bytes (overriding ENGINE_CPU_CACHE_BYTES) and evicts
// the oldest cached blocks down to it; 0 empties the cache and turns it off.
void cpu_allocator_set_cache_limit(std::size_t bytes);

}  // namespace engine
