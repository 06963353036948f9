// Random numbers from Philox4x32-10 (Salmon et al., "Parallel random numbers:
// as easy as 1, 2, 3", SC'11), a counter-based generator: the i-th block of
// four 32-bit outputs is a pure function philox(key = seed, counter = i).
// Nothing is carried from one number to the next, so any thread on any
// device can compute any element independently: the CUDA backend produces
// the bit-identical stream from the same (seed, offset) (see
// kernels/common/philox.h, the one implementation both backends call).
//
// A Generator is (seed, offset). Each fill consumes a whole number of
// counters from `offset` on and advances it, so consecutive draws are
// independent streams, and a run can be resumed by restoring (seed, offset).
// The mapping from counters to elements is documented in rng.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace engine {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  // Reserves `counters` consecutive 128-bit counters; returns the first.
  uint64_t advance(uint64_t counters) {
    const uint64_t first = offset_;
    offset_ += counters;
    return first;
  }

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
};

// The process-wide generator that layers use for initialisation when none is
// given (torch.manual_seed's counterpart).
Generator& default_generator();
void manual_seed(uint64_t seed);

// In place, on the tensor's device: uniform in [low, high), normal(mean, std).
void uniform_(Tensor& t, float low, float high, Generator& gen = default_generator());
void normal_(Tensor& t, float mean, float std, Generator& gen = default_generator());
// New F32 tensors: uniform [0, 1) and standard normal.
Tensor rand(const Shape& shape, Generator& gen = default_generator(), Device device = Device::cpu());
Tensor randn(const Shape& shape, Generator& gen = default_generator(), Device device = Device::cpu());
// New I64 tensor of integers uniform in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen = default_generator(),
               Device device = Device::cpu());
// A uniformly random permutation of 0..n-1 (host; used by data loaders).
std::vector<int64_t> randperm(int64_t n, Generator& gen = default_generator());

}  // namespace engine
