// Philox fills on the GPU: the same streams as core/rng.cpp's CPU fills, bit
// for bit. Both call kernels/common/philox.h, and both use the same mapping
// from elements to counters (core/rng.cpp documents it):
//   uniform, normal   element i <- lane i % 4 of block first + i / 4
//   randint           element i <- 64-bit half i % 2 of block first + i / 2
// where block b = philox::random_block(seed, b). On the GPU, thread j
// computes block first + j and writes its (up to) four or two elements; the
// CPU's loop iteration j does the same. The caller reserves the blocks
// (Generator::advance) and passes `first`. Device pointers, current stream.
#pragma once
#include <cstdint>

namespace engine::cuda {

// out[i] = uniform_in(uniform01(word), low, high), i < n.   Uses ceil(n / 4) blocks.
void uniform_fill(float* out, int64_t n, uint64_t seed, uint64_t first_block, float low, float high);

// out[i] = normal_scaled(z, mean, stddev), z from Box-Muller (philox::normal4), i < n.   ceil(n / 4) blocks.
void normal_fill(float* out, int64_t n, uint64_t seed, uint64_t first_block, float mean, float stddev);

// out[i] = low + floor(x * range / 2^64) (mod 2^64), x the 64-bit word, i < n.   ceil(n / 2) blocks.
void randint_fill(int64_t* out, int64_t n, uint64_t seed, uint64_t first_block, int64_t low, uint64_t range);

}  // namespace engine::cuda
