// The CPU caching allocator (core/allocator.h): size classes, reuse of freed
// blocks, the cap and its eviction order, emptying, alignment, the statistics
// against a reference model, the out-of-memory path, and many threads at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "core/tensor.h"

namespace engine {
namespace {

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * KiB;

std::unique_ptr<Storage> allocate(std::size_t bytes) { return std::make_unique<Storage>(bytes, Device::cpu()); }

bool is_aligned_64(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 64 == 0; }

// Every test starts from an empty cache with a known cap, and restores the
// cap it found (which other tests in this process run under).
class CpuAllocator : public ::testing::Test {
 protected:
  static constexpr std::size_t kTestLimit = 256 * MiB;

  void SetUp() override {
    saved_limit_ = cpu_allocator_stats().cache_limit_bytes;
    cpu_allocator_set_cache_limit(kTestLimit);
    cpu_allocator_empty_cache();
  }
  void TearDown() override { cpu_allocator_set_cache_limit(saved_limit_); }

 private:
  std::size_t saved_limit_ = 0;
};

TEST_F(CpuAllocator, SizeClasses) {
  // Small: multiples of 64 B; large (above 1 MiB): multiples of 64 KiB.
  EXPECT_EQ(cpu_allocation_size_class(0), 64u);
  EXPECT_EQ(cpu_allocation_size_class(1), 64u);
  EXPECT_EQ(cpu_allocation_size_class(64), 64u);
  EXPECT_EQ(cpu_allocation_size_class(65), 128u);
  EXPECT_EQ(cpu_allocation_size_class(1000), 1024u);
  EXPECT_EQ(cpu_allocation_size_class(MiB), MiB);
  EXPECT_EQ(cpu_allocation_size_class(MiB + 1), MiB + 64 * KiB);
  EXPECT_EQ(cpu_allocation_size_class(25000000), 382u * 64 * KiB);  // 25e6 / 65536 = 381.5
  EXPECT_THROW(cpu_allocation_size_class(std::numeric_limits<std::size_t>::max()), Error);
}

TEST_F(CpuAllocator, FreeThenAllocateSameClassReusesTheBlock) {
  void* first = nullptr;
  {
    auto block = allocate(1000);
    first = block->data();
  }
  const CpuAllocatorStats freed = cpu_allocator_stats();
  EXPECT_EQ(freed.bytes_cached, 1024u) << "the freed block is kept, counted at its size class";

  auto again = allocate(990);  // another request of the same class (1024 B)
  const CpuAllocatorStats reused = cpu_allocator_stats();
  EXPECT_EQ(again->data(), first);
  EXPECT_EQ(reused.cache_hits, freed.cache_hits + 1);
  EXPECT_EQ(reused.system_allocations, freed.system_allocations);
  EXPECT_EQ(reused.allocations, freed.allocations + 1);
  EXPECT_EQ(reused.bytes_cached, 0u);
  EXPECT_EQ(reused.bytes_in_use, freed.bytes_in_use + 990);
}

TEST_F(CpuAllocator, LargeBlocksAreReused) {
  void* first = nullptr;
  {
    auto block = allocate(25000000);  // a 25 MB activation
    std::memset(block->data(), 1, block->bytes());
    first = block->data();
  }
  EXPECT_EQ(cpu_allocator_stats().bytes_cached, 382u * 64 * KiB);
  const auto system_before = cpu_allocator_stats().system_allocations;
  auto again = allocate(25000000 - 4096);  // the same 64 KiB granule
  EXPECT_EQ(again->data(), first);
  EXPECT_EQ(cpu_allocator_stats().system_allocations, system_before);
}

TEST_F(CpuAllocator, DifferentClassMisses) {
  allocate(1000).reset();  // leaves a 1024 B block in the cache
  const CpuAllocatorStats before = cpu_allocator_stats();
  auto block = allocate(1100);  // class 1152 B: the cached block does not serve it
  const CpuAllocatorStats after = cpu_allocator_stats();
  EXPECT_EQ(after.cache_hits, before.cache_hits);
  EXPECT_EQ(after.system_allocations, before.system_allocations + 1);
  EXPECT_EQ(after.bytes_cached, 1024u) << "the 1024 B block is still cached";
}

TEST_F(CpuAllocator, CapEvictsTheOldestBlocksFirst) {
  cpu_allocator_set_cache_limit(2 * MiB + MiB / 2);  // room for two 1 MiB blocks, not three
  auto a = allocate(MiB);
  auto b = allocate(MiB);
  auto c = allocate(MiB);
  void* b_ptr = b->data();
  void* c_ptr = c->data();
  a.reset();
  b.reset();
  EXPECT_EQ(cpu_allocator_stats().bytes_cached, 2 * MiB);
  c.reset();  // would make 3 MiB: a, the oldest, goes back to the system
  EXPECT_EQ(cpu_allocator_stats().bytes_cached, 2 * MiB);

  // The cache now holds c and b; the newest is handed out first.
  const auto system_before = cpu_allocator_stats().system_allocations;
  auto first = allocate(MiB);
  auto second = allocate(MiB);
  EXPECT_EQ(first->data(), c_ptr);
  EXPECT_EQ(second->data(), b_ptr);
  EXPECT_EQ(cpu_allocator_stats().system_allocations, system_before);
  auto third = allocate(MiB);
  EXPECT_EQ(cpu_allocator_stats().system_allocations, system_before + 1) << "a was not cached any more";

  // A block larger than the cap is never cached.
  allocate(3 * MiB).reset();
  EXPECT_EQ(cpu_allocator_stats().bytes_cached, 0u);

  // Lowering the cap evicts down to it.
  first.reset();
  second.reset();
  EXPECT_EQ(cpu_allocator_stats().bytes_cached, 2 * MiB);
  cpu_allocator_set_cache_limit(MiB);
  EXPECT_EQ(cpu_allocator_stats().bytes_cached, MiB);
  EXPECT_EQ(cpu_allocator_stats().cache_limit_bytes, MiB);
}

TEST_F(CpuAllocator, EmptyCacheReturnsEveryCachedBlock) {
  for (std::size_t bytes : {std::size_t{1}, std::size_t{5000}, 2 * MiB}) allocate(bytes).reset();
  EXPECT_EQ(cpu_allocator_stats().bytes_cached, 64 + 5056 + 2 * MiB);
  auto live = allocate(777);
  cpu_allocator_empty_cache();
  const CpuAllocatorStats emptied = cpu_allocator_stats();
  EXPECT_EQ(emptied.bytes_cached, 0u);
  allocate(5000).reset();
  EXPECT_EQ(cpu_allocator_stats().system_allocations, emptied.system_allocations + 1);
  std::memset(live->data(), 3, live->bytes());  // blocks in use are untouched
}

TEST_F(CpuAllocator, LimitZeroTurnsCachingOff) {
  cpu_allocator_set_cache_limit(0);
  const CpuAllocatorStats before = cpu_allocator_stats();
  allocate(4096).reset();
  allocate(4096).reset();
  const CpuAllocatorStats after = cpu_allocator_stats();
  EXPECT_EQ(after.bytes_cached, 0u);
  EXPECT_EQ(after.cache_hits, before.cache_hits);
  EXPECT_EQ(after.system_allocations, before.system_allocations + 2);
}

TEST_F(CpuAllocator, EveryBlockIs64ByteAligned) {
  const std::vector<std::size_t> sizes = {0, 1, 2, 63, 64, 65, 100, 1000, 4097, MiB, MiB + 1, 3 * MiB + 5};
  for (int round = 0; round < 2; ++round) {  // round 0: fresh from the system; round 1: from the cache
    std::vector<std::unique_ptr<Storage>> blocks;
    for (std::size_t bytes : sizes) {
      blocks.push_back(allocate(bytes));
      EXPECT_TRUE(is_aligned_64(blocks.back()->data())) << bytes << " bytes, round " << round;
    }
    EXPECT_NE(blocks[0]->data(), blocks[1]->data()) << "even empty blocks have their own address";
  }
}

TEST_F(CpuAllocator, ZerosFillsABlockReusedFromTheCache) {
  void* first = nullptr;
  {
    Tensor dirty = Tensor::full({1000, 1000}, 7.0f);
    first = dirty.raw_data();
  }
  Tensor zeros = Tensor::zeros({1000, 1000});
  EXPECT_EQ(zeros.raw_data(), first) << "the 7s are in this block";
  for (float v : zeros.to_vector()) ASSERT_EQ(v, 0.0f);
}

// A pseudo-random sequence of allocations and frees, checked after every
// step against a model of what the allocator must do: a hit exactly when a
// block of the request's class was freed and not reused since.
TEST_F(CpuAllocator, StatisticsFollowAReferenceModel) {
  struct Request {
    std::size_t bytes, size_class;  // the class written out by hand
  };
  const std::array<Request, 7> requests = {{{0, 64},
                                            {1, 64},
                                            {100, 128},
                                            {5000, 5056},
                                            {MiB, MiB},
                                            {MiB + 1, MiB + 64 * KiB},
                                            {2 * MiB + 100, 2 * MiB + 64 * KiB}}};
  const CpuAllocatorStats start = cpu_allocator_stats();
  std::vector<std::pair<std::unique_ptr<Storage>, Request>> live;
  std::map<std::size_t, int> model_cached;  // size class -> number of cached blocks
  std::size_t model_in_use = 0, model_peak = 0, model_cached_bytes = 0;
  std::size_t model_allocations = 0, model_hits = 0, model_system = 0;

  std::uint32_t state = 12345;
  auto next = [&state] { return state = state * 1664525u + 1013904223u, state >> 8; };
  for (int step = 0; step < 600; ++step) {
    if (live.empty() || next() % 3 != 0) {  // allocate twice as often as free
      const Request request = requests[next() % requests.size()];
      live.emplace_back(allocate(request.bytes), request);
      model_allocations += 1;
      if (model_cached[request.size_class] > 0) {
        model_cached[request.size_class] -= 1;
        model_cached_bytes -= request.size_class;
        model_hits += 1;
      } else {
        model_system += 1;
      }
      model_in_use += request.bytes;
      model_peak = std::max(model_peak, model_in_use);
    } else {
      const std::size_t index = next() % live.size();
      const Request request = live[index].second;
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(index));
      model_cached[request.size_class] += 1;
      model_cached_bytes += request.size_class;
      model_in_use -= request.bytes;
      ASSERT_LE(model_cached_bytes, kTestLimit) << "the model assumes that nothing is evicted";
    }
    const CpuAllocatorStats now = cpu_allocator_stats();
    ASSERT_EQ(now.bytes_in_use, start.bytes_in_use + model_in_use) << "step " << step;
    ASSERT_EQ(now.peak_bytes_in_use, std::max(start.peak_bytes_in_use, start.bytes_in_use + model_peak));
    ASSERT_EQ(now.bytes_cached, model_cached_bytes) << "step " << step;
    ASSERT_EQ(now.allocations, start.allocations + model_allocations);
    ASSERT_EQ(now.cache_hits, start.cache_hits + model_hits) << "step " << step;
    ASSERT_EQ(now.system_allocations, start.system_allocations + model_system) << "step " << step;
  }
  EXPECT_GT(model_hits, 100u) << "the sequence should exercise the cache";
}

bool built_with_address_sanitizer() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#endif
#endif
  return false;
}

TEST_F(CpuAllocator, OutOfMemoryEmptiesTheCacheThenThrowsWithTheSize) {
  if (built_with_address_sanitizer())
    GTEST_SKIP() << "AddressSanitizer aborts on impossible allocations instead of returning null";
  allocate(MiB).reset();
  const CpuAllocatorStats before = cpu_allocator_stats();
  ASSERT_EQ(before.bytes_cached, MiB);
  const std::size_t impossible = std::size_t{1} << 60;  // 1 EiB: beyond any address space
  try {
    Storage storage(impossible, Device::cpu());
    FAIL() << "an allocation of 1 EiB must fail";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("out of memory"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(impossible)), std::string::npos) << message;
    EXPECT_NE(message.find("bytes in use by tensors"), std::string::npos) << message;
  }
  const CpuAllocatorStats after = cpu_allocator_stats();
  EXPECT_EQ(after.bytes_cached, 0u) << "the cache was emptied before the retry";
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  EXPECT_EQ(after.allocations, before.allocations);
  EXPECT_THROW(Storage(std::numeric_limits<std::size_t>::max(), Device::cpu()), Error);
  allocate(100).reset();  // and the allocator still works
}

// Threads allocate, write, check and free blocks of a few classes, under a
// small cap (32 KiB) so that eviction runs concurrently too. Each block is filled
// with a byte unique to its owner and checked before it is freed: two owners
// handed the same block would overwrite each other.
TEST_F(CpuAllocator, ManyThreadsKeepTheCountersBalanced) {
  cpu_allocator_set_cache_limit(32 * KiB);
  constexpr int kThreads = 4;
  constexpr int kIterations = 50000;
  const std::array<std::size_t, 5> sizes = {1, 64, 640, 4096, 16 * KiB};  // small: many allocations per second
  const CpuAllocatorStats start = cpu_allocator_stats();
  std::atomic<int> misaligned{0}, overwritten{0};
  std::atomic<bool> go{false};  // released once all threads exist, so that they overlap

  auto work = [&](int thread) {
    while (!go.load()) std::this_thread::yield();
    std::uint32_t state = 777u + static_cast<std::uint32_t>(thread);
    std::array<std::unique_ptr<Storage>, 3> held;  // a few live blocks per thread
    std::array<unsigned char, 3> marks{};
    for (int i = 0; i < kIterations; ++i) {
      state = state * 1664525u + 1013904223u;
      const std::size_t slot = (state >> 8) % held.size();
      if (held[slot]) {
        const auto* bytes = static_cast<const unsigned char*>(held[slot]->data());
        for (std::size_t k = 0; k < held[slot]->bytes(); ++k)
          if (bytes[k] != marks[slot]) {
            overwritten += 1;
            break;
          }
      }
      held[slot] = allocate(sizes[(state >> 16) % sizes.size()]);
      if (!is_aligned_64(held[slot]->data())) misaligned += 1;
      marks[slot] = static_cast<unsigned char>(thread * 64 + i % 64);
      std::memset(held[slot]->data(), marks[slot], held[slot]->bytes());
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
  go = true;
  for (std::thread& thread : threads) thread.join();

  const CpuAllocatorStats end = cpu_allocator_stats();
  EXPECT_EQ(misaligned.load(), 0);
  EXPECT_EQ(overwritten.load(), 0);
  EXPECT_EQ(end.bytes_in_use, start.bytes_in_use) << "every block was freed";
  EXPECT_EQ(end.allocations - start.allocations, std::size_t{kThreads} * kIterations);
  EXPECT_EQ((end.cache_hits - start.cache_hits) + (end.system_allocations - start.system_allocations),
            end.allocations - start.allocations)
      << "each allocation is either a hit or a system allocation";
  EXPECT_GT(end.cache_hits, start.cache_hits);
  EXPECT_LE(end.bytes_cached, 32 * KiB);
  cpu_allocator_empty_cache();
  EXPECT_EQ(cpu_allocator_stats().bytes_cached, 0u);
}

}  // namespace
}  // namespace engine
