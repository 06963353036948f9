// The random fills: uniform_, normal_, rand, randn, randint, randperm, on top
// of Philox4x32-10 (kernels/common/philox.h).
//
// Which random words each element gets
// ------------------------------------
// A Generator is (seed, offset). Block number b of a generator is the four
// 32-bit words  philox::random_block(seed, b)  (key = seed, counter = b; see
// philox.h). A fill of n elements reserves the next `blocks` block numbers,
//     first = gen.advance(blocks)        (offset += blocks)
// and element i (in row-major order) is computed from block first + i / P,
// where P is the number of elements one block yields:
//
//   fill              P   element i uses                         blocks
//   uniform_, rand    4   word i % 4 of block first + i/4        ceil(n / 4)
//                         -> uniform01(word)   (top 24 bits * 2^-24)
//   normal_, randn    4   block first + i/4; its words (w0, w1) and (w2, w3)
//                         are two Box-Muller pairs giving normals z0, z1 and
//                         z2, z3; element i takes z[i % 4]          ceil(n / 4)
//   randint           2   64-bit word (w[2h] | w[2h+1] << 32), h = i % 2,
//                         of block first + i/2 -> low + floor(x * range / 2^64)
//                                                                  ceil(n / 2)
//   randperm          2   draw d (d = 0 .. n-2) as randint's element d;
//                         Fisher-Yates step i = n-1-d swaps position i with
//                         floor(x * (i + 1) / 2^64)                ceil((n-1) / 2)
//
// The last block of a fill may be used in part; its unused words are dropped,
// never carried into the next fill. So:
//   - a fill's values depend only on (seed, offset at the start, n, the fill
//     kind and its arguments): restore (seed, offset) and the draw repeats;
//   - consecutive fills use disjoint blocks, so they are independent streams;
//   - each element is a pure function of its index, so the fills below are
//     OpenMP loops over blocks, and the result cannot depend on the thread
//     count or on the order in which blocks are computed;
//   - the CUDA kernels run the same mapping, one thread per block, and call
//     the same philox.h functions, so they produce the same bits.
//
// Not recorded by autograd: uniform_ and normal_ write the tensor's values
// directly, like torch.nn.init does under no_grad.
#include "core/rng.h"

#include <algorithm>
#include <cmath>

#include "core/dispatch.h"
#include "kernels/common/philox.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/rng.h"
#endif

namespace engine {
namespace {

// torch.default_generator's initial seed, so that an unseeded run starts
// from a fixed, documented state.
constexpr uint64_t kDefaultSeed = 67280421310721ull;

// Below this many blocks a fill runs on one thread (thread start-up costs more).
constexpr int64_t kMinBlocksForThreads = 2048;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// out[i] = lane i % 4 of values_of_block(first + i / 4), for i < n, where
// values_of_block(b, values[4]) computes the four values of block b.
template <typename ValuesOfBlock>
void fill_by_blocks(float* out, int64_t n, uint64_t seed, uint64_t first, const ValuesOfBlock& values_of_block) {
  const int64_t blocks = ceil_div(n, 4);
#pragma omp parallel for schedule(static) if (blocks >= kMinBlocksForThreads)
  for (int64_t b = 0; b < blocks; ++b) {
    float values[4];
    values_of_block(philox::random_block(seed, first + static_cast<uint64_t>(b)), values);
    const int64_t start = 4 * b;
    const int64_t count = std::min<int64_t>(4, n - start);
    for (int64_t lane = 0; lane < count; ++lane) out[start + lane] = values[lane];
  }
}

// A new tensor for the factory `op`; an unusable device (no GPU, a CPU-only
// build) is reported under the op's name.
Tensor new_tensor(const char* op, const Shape& shape, DType dtype, Device device) {
  try {
    return Tensor::empty(shape, dtype, device);
  } catch (const Error& e) {
    throw Error(detail::concat_message(op, ": ", e.what()));
  }
}

}  // namespace

Generator& default_generator() {
  // One process-wide generator (not synchronised: draw from one thread).
  static Generator generator(kDefaultSeed);
  return generator;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

void uniform_(Tensor& t, float low, float high, Generator& gen) {
  check_float32("uniform_", "t", t);
  ENGINE_CHECK(std::isfinite(low) && std::isfinite(high), "uniform_: expected finite bounds, got low=", low,
               ", high=", high);
  ENGINE_CHECK(low <= high, "uniform_: expected low <= high, got low=", low, ", high=", high);
  ENGINE_CHECK(std::isfinite(high - low), "uniform_: the range high - low overflows float, got low=", low,
               ", high=", high);
  const int64_t n = t.numel();
  const uint64_t seed = gen.seed();
  const uint64_t first = gen.advance(static_cast<uint64_t>(ceil_div(n, 4)));
  if (!t.device().is_cpu()) {
#ifdef ENGINE_WITH_CUDA
    cuda::uniform_fill(t.data<float>(), n, seed, first, low, high);  // the same mapping, on the device
    return;
#else
    cuda_not_implemented("uniform_");
#endif
  }
  fill_by_blocks(t.data<float>(), n, seed, first, [low, high](const philox::Block& block, float values[4]) {
    for (int lane = 0; lane < 4; ++lane)
      values[lane] = philox::uniform_in(philox::uniform01(block.w[lane]), low, high);
  });
}

void normal_(Tensor& t, float mean, float stddev, Generator& gen) {
  check_float32("normal_", "t", t);
  ENGINE_CHECK(stddev >= 0.0f, "normal_: argument 'std': expected std >= 0, got ", stddev);  // also rejects NaN
  const int64_t n = t.numel();
  const uint64_t seed = gen.seed();
  const uint64_t first = gen.advance(static_cast<uint64_t>(ceil_div(n, 4)));
  if (!t.device().is_cpu()) {
#ifdef ENGINE_WITH_CUDA
    cuda::normal_fill(t.data<float>(), n, seed, first, mean, stddev);
    return;
#else
    cuda_not_implemented("normal_");
#endif
  }
  fill_by_blocks(t.data<float>(), n, seed, first, [mean, stddev](const philox::Block& block, float values[4]) {
    philox::normal4(block, values);
    for (int lane = 0; lane < 4; ++lane) values[lane] = philox::normal_scaled(values[lane], mean, stddev);
  });
}

Tensor rand(const Shape& shape, Generator& gen, Device device) {
  Tensor t = new_tensor("rand", shape, DType::F32, device);
  uniform_(t, 0.0f, 1.0f, gen);  // 0 + u * 1 = u exactly
  return t;
}

Tensor randn(const Shape& shape, Generator& gen, Device device) {
  Tensor t = new_tensor("randn", shape, DType::F32, device);
  normal_(t, 0.0f, 1.0f, gen);
  return t;
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, Device device) {
  ENGINE_CHECK(low < high, "randint: expected low < high, got low=", low, ", high=", high);
  Tensor t = new_tensor("randint", shape, DType::I64, device);

  // Unsigned arithmetic: high - low may exceed INT64_MAX (e.g. the full int64
  // range), and low + k wraps back into [low, high) correctly modulo 2^64.
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  const int64_t n = t.numel();
  const int64_t blocks = ceil_div(n, 2);
  const uint64_t seed = gen.seed();
  const uint64_t first = gen.advance(static_cast<uint64_t>(blocks));
  if (!device.is_cpu()) {
#ifdef ENGINE_WITH_CUDA
    cuda::randint_fill(t.data<int64_t>(), n, seed, first, low, range);
    return t;
#else
    cuda_not_implemented("randint");
#endif
  }
  int64_t* out = t.data<int64_t>();
#pragma omp parallel for schedule(static) if (blocks >= kMinBlocksForThreads)
  for (int64_t b = 0; b < blocks; ++b) {
    const philox::Block block = philox::random_block(seed, first + static_cast<uint64_t>(b));
    for (int half = 0; half < 2 && 2 * b + half < n; ++half) {
      const uint64_t k = philox::below(philox::word64(block, half), range);
      out[2 * b + half] = static_cast<int64_t>(static_cast<uint64_t>(low) + k);
    }
  }
  return t;
}

std::vector<int64_t> randperm(int64_t n, Generator& gen) {
  ENGINE_CHECK(n >= 0, "randperm: expected n >= 0, got ", n);
  std::vector<int64_t> perm(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  if (n < 2) return perm;  // nothing to shuffle; no blocks consumed

  // Fisher-Yates, from the back: position i swaps with a uniform j in [0, i],
  // so every one of the n! orders is equally likely (up to the 2^-64 bias of
  // `below`). Sequential by nature; fine for the data loaders' sizes.
  const int64_t draws = n - 1;
  const uint64_t seed = gen.seed();
  const uint64_t first = gen.advance(static_cast<uint64_t>(ceil_div(draws, 2)));
  philox::Block block{};
  for (int64_t d = 0; d < draws; ++d) {
    if (d % 2 == 0) block = philox::random_block(seed, first + static_cast<uint64_t>(d / 2));
    const int64_t i = n - 1 - d;
    const int64_t j = static_cast<int64_t>(philox::below(philox::word64(block, static_cast<int>(d % 2)),
                                                         static_cast<uint64_t>(i + 1)));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

}  // namespace engine
