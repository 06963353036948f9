// The CUDA caching allocator: where every tensor on a GPU gets its memory.
//
// Why cache: cudaMalloc and cudaFree are slow (tens of microseconds to
// milliseconds) and cudaFree synchronises the whole device. A training step
// allocates and frees hundreds of activation and gradient tensors, the same
// sizes every step. So a freed block is not returned to the driver: it is
// kept in a free list and handed out again to the next request of its size
// class. After the first step a training loop makes no cudaMalloc call at
// all, and allocation costs a map look-up.
//
// Size classes. A request of `bytes` is rounded up to its class:
//     bytes <= 1 MiB:  a multiple of 512 bytes        (small: biases, BN stats)
//     bytes  > 1 MiB:  a multiple of 2 MiB            (large: activations)
// and a cached block is reused only for a request of exactly its class, never
// split. Simple, and enough for a loop that asks for the same sizes every
// step; the waste is under 512 bytes per small block and under 2 MiB per large
// one (under 8% for the assignment's 25 MiB activations).
//
// Streams. A block is allocated for the current stream (stream.h) of its
// device and remembers that stream. When it is freed, kernels still queued on
// that stream may be using it; that is safe, because the block goes back to
// the free list of THAT stream only, and any later kernel that gets it is
// queued behind them on the same stream. (A block used on a second stream
// would need an event before reuse; the engine uses one stream per device.)
//
// Out of memory: when cudaMalloc fails, the allocator returns every cached
// block of that device to the driver (cudaFree) and tries once more; if that
// fails too it throws engine::Error naming the requested size and the
// statistics, so that the message says whether the memory is in live tensors
// (allocated) or was merely fragmented across size classes (reserved).
//
// Thread safety: one mutex around everything. deallocate never calls CUDA, so
// it is safe in destructors (noexcept) and at program exit. The cache lives
// until the process ends (the driver frees it then).
#pragma once
#include <cstddef>
#include <string>

namespace engine::cuda {

// Per-device counters. Byte counts are of rounded (size-class) blocks except
// requested_bytes.
struct AllocatorStats {
  std::size_t allocated_bytes = 0;       // in blocks handed out and not yet freed
  std::size_t requested_bytes = 0;       // what the callers of those blocks asked for
  std::size_t reserved_bytes = 0;        // obtained from cudaMalloc and still held: allocated + cached
  std::size_t cached_bytes = 0;          // reserved, not handed out (in the free lists)
  std::size_t peak_allocated_bytes = 0;  // maximum of allocated_bytes since start / reset_peak_stats
  std::size_t peak_reserved_bytes = 0;
  std::size_t blocks_in_use = 0;
  std::size_t allocations = 0;           // allocate() calls that succeeded
  std::size_t cache_hits = 0;            // ... of which were served from a free list
  std::size_t cuda_malloc_calls = 0;     // successful cudaMalloc calls
  std::size_t cuda_free_calls = 0;       // cudaFree calls (empty_cache, out-of-memory retry)
  std::size_t out_of_memory_retries = 0; // times the cache was emptied to satisfy a request
};

// The size class of a request (see above). Throws for sizes near SIZE_MAX.
std::size_t round_allocation_size(std::size_t bytes);

// A block of at least `bytes` on `device`, for that device's current stream.
// Throws engine::Error on failure (out of memory after one retry, or a CUDA
// error). The pointer is 256-byte aligned (cudaMalloc's guarantee).
void* allocate(std::size_t bytes, int device);

// Returns a block from allocate() to its stream's free list. Null is ignored.
// Never calls CUDA; an unknown pointer is ignored too (noexcept) but counted
// in the process's stderr log as a bug.
void deallocate(void* ptr) noexcept;

// The counters of `device`.
AllocatorStats allocator_stats(int device);
// Sets the peaks to the current values (to measure one phase, e.g. one step).
void reset_peak_stats(int device);
// cudaFree's every cached (free) block of `device`; blocks in use stay.
void empty_cache(int device);

// A one-line summary of `stats`, as the out-of-memory error prints it, e.g.
// "allocated 1.50 GiB in 212 blocks (peak 2.00 GiB), reserved 2.25 GiB (cached 768.00 MiB), 41 cudaMalloc calls"
std::string describe(const AllocatorStats& stats);
// "512 B", "1.50 MiB", "2.00 GiB".
std::string format_bytes(std::size_t bytes);

}  // namespace engine::cuda
