// The Philox4x32-10 generator and the random fills (core/rng.h,
// kernels/common/philox.h): known answers, the documented element -> block
// mapping, accuracy and build-independence of the float transforms,
// statistics, reproducibility, thread-count independence, and bad arguments.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/common/philox.h"

namespace engine {
namespace {

using philox::Block;
using philox::Key;

// Expects `call` to throw an engine::Error whose message contains every one of `parts`.
template <typename Call>
void expect_error_mentions(Call call, const std::vector<std::string>& parts) {
  try {
    call();
    ADD_FAILURE() << "expected an engine::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  }
}

// An independent uniform: the top 24 bits / 2^24, in double.
double uniform_of_word(uint32_t w) { return static_cast<double>(w >> 8) / 16777216.0; }

// FNV-1a over 32-bit values: a hash of a whole stream of float bits.
struct Fnv1a {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(uint32_t v) { h = (h ^ v) * 0x100000001b3ull; }
};

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return s / static_cast<double>(v.size());
}

// Central moment of order k about `mean`.
double central_moment(const std::vector<float>& v, double mean, int k) {
  double s = 0;
  for (float x : v) s += std::pow(x - mean, k);
  return s / static_cast<double>(v.size());
}

double correlation(const std::vector<float>& a, const std::vector<float>& b) {
  const double ma = mean_of(a), mb = mean_of(b);
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

// ---------------------------------------------------------------------------
// Philox itself
// ---------------------------------------------------------------------------

// The known-answer vectors published with Random123 (kat_vectors,
// "philox4x32 10"): counter, key -> output.
TEST(Philox, KnownAnswers) {
  struct Case {
    Block counter;
    Key key;
    Block expected;
  };
  const Case cases[] = {
      {{{0u, 0u, 0u, 0u}}, {{0u, 0u}}, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       {{0xffffffffu, 0xffffffffu}},
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       {{0xa4093822u, 0x299f31d0u}},
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Case& c : cases) {
    const Block out = philox::philox4x32_10(c.counter, c.key);
    for (int j = 0; j < 4; ++j) EXPECT_EQ(out.w[j], c.expected.w[j]) << "word " << j;
  }
}

// One round written out from the paper's definition, independently of philox_round.
TEST(Philox, OneRoundByHand) {
  const Block c{{0x01234567u, 0x89abcdefu, 0xdeadbeefu, 0x0badf00du}};
  const Key k{{0x11111111u, 0x22222222u}};
  const uint64_t p0 = 0xD2511F53ull * 0x01234567ull, p1 = 0xCD9E8D57ull * 0xdeadbeefull;
  const Block out = philox::philox_round(c, k);
  EXPECT_EQ(out.w[0], static_cast<uint32_t>(p1 >> 32) ^ 0x89abcdefu ^ 0x11111111u);
  EXPECT_EQ(out.w[1], static_cast<uint32_t>(p1));
  EXPECT_EQ(out.w[2], static_cast<uint32_t>(p0 >> 32) ^ 0x0badf00du ^ 0x22222222u);
  EXPECT_EQ(out.w[3], static_cast<uint32_t>(p0));
}

// random_block(seed, index) = philox(counter {lo(index), hi(index), stream, 0}, key {lo(seed), hi(seed)}).
TEST(Philox, CounterAndKeyLayout) {
  const uint64_t seed = 0x0123456789abcdefull, index = 0xfedcba9876543210ull;
  const Block a = philox::random_block(seed, index, 7);
  const Block b = philox::philox4x32_10({{0x76543210u, 0xfedcba98u, 7u, 0u}}, {{0x89abcdefu, 0x01234567u}});
  for (int j = 0; j < 4; ++j) EXPECT_EQ(a.w[j], b.w[j]);
  const Block other_stream = philox::random_block(seed, index, 8);
  EXPECT_NE(a.w[0], other_stream.w[0]);
}

TEST(Philox, MulHi64AgainstInt128) {
  __extension__ typedef unsigned __int128 u128;
  for (uint64_t i = 0; i < 10000; ++i) {
    const Block blk = philox::random_block(99, i);
    const uint64_t a = philox::word64(blk, 0), b = philox::word64(blk, 1) >> (i % 64);
    EXPECT_EQ(philox::mulhi64(a, b), static_cast<uint64_t>((static_cast<u128>(a) * b) >> 64)) << a << " * " << b;
  }
  EXPECT_EQ(philox::mulhi64(~0ull, ~0ull), ~0ull - 1);
  EXPECT_EQ(philox::below(~0ull, 10), 9u);  // the largest word maps to the last value
  EXPECT_EQ(philox::below(0, 10), 0u);
}

// ---------------------------------------------------------------------------
// The float transforms
// ---------------------------------------------------------------------------

// ln on all 2^24 inputs u = m * 2^-24 that Box-Muller can feed it.
TEST(PhiloxTransforms, LogIsAccurateOnEveryInput) {
  double worst = 0;
  for (uint32_t m = 1; m < (1u << 24); ++m) {
    const float u = static_cast<float>(m) * 0x1p-24f;
    const double exact = std::log(static_cast<double>(u));
    worst = std::max(worst, std::fabs((philox::log_unit(u) - exact) / exact));
  }
  EXPECT_LT(worst, 5e-7) << "max relative error of log_unit";
  EXPECT_EQ(philox::log_unit(1.0f), 0.0f);
}

// sin and cos on all 2^24 angles 2 pi k / 2^24. The double reference has
// errors ~1e-16 where the true value is 0 (k a multiple of 2^22), hence the
// relative error is taken against max(|exact|, 1e-9).
TEST(PhiloxTransforms, SinCosAreAccurateOnEveryInput) {
  double worst_sin = 0, worst_cos = 0;
  for (uint32_t k = 0; k < (1u << 24); ++k) {
    float s, c;
    philox::sincos_turns(k, s, c);
    const double theta = 2.0 * M_PI * static_cast<double>(k) / 16777216.0;
    const double es = std::sin(theta), ec = std::cos(theta);
    worst_sin = std::max(worst_sin, std::fabs(s - es) / std::max(std::fabs(es), 1e-9));
    worst_cos = std::max(worst_cos, std::fabs(c - ec) / std::max(std::fabs(ec), 1e-9));
  }
  EXPECT_LT(worst_sin, 5e-7);
  EXPECT_LT(worst_cos, 5e-7);
  float s, c;
  philox::sincos_turns(0, s, c);
  EXPECT_EQ(s, 0.0f);
  EXPECT_EQ(c, 1.0f);
  philox::sincos_turns(1u << 22, s, c);  // a quarter turn
  EXPECT_EQ(s, 1.0f);
  EXPECT_EQ(std::fabs(c), 0.0f);
}

// Box-Muller against the libm formula in double, over 4M normals.
TEST(PhiloxTransforms, BoxMullerMatchesLibmInDouble) {
  double worst = 0;
  for (uint64_t i = 0; i < (1u << 20); ++i) {
    const Block blk = philox::random_block(2024, i);
    float z[4];
    philox::normal4(blk, z);
    for (int pair = 0; pair < 2; ++pair) {
      const double u1 = (static_cast<double>(blk.w[2 * pair] >> 8) + 1.0) / 16777216.0;
      const double theta = 2.0 * M_PI * uniform_of_word(blk.w[2 * pair + 1]);
      const double r = std::sqrt(-2.0 * std::log(u1));
      const double expected[2] = {r * std::cos(theta), r * std::sin(theta)};
      for (int j = 0; j < 2; ++j)
        worst = std::max(worst, std::fabs(z[2 * pair + j] - expected[j]) / std::max(std::fabs(expected[j]), 1e-9));
    }
  }
  EXPECT_LT(worst, 1e-6) << "max relative error of the normals";
}

// The transforms must give the same bits whatever the compiler does with
// products and sums (see philox.h, "Why we write our own ln, sin and cos").
// These hashes of all 2^24 outputs of each transform (and of 4M normals) were
// computed by a build WITHOUT fused multiply-add: g++ -O0 -mno-fma
// -ffp-contract=off. This test file is compiled with -mfma and GCC's default
// -ffp-contract=fast, so if any product in philox.h could be contracted into
// an FMA, the hashes would differ. (Dropping the asm barrier in mul_rn does
// change all three here.) The CUDA build must reproduce the same hashes.
TEST(PhiloxTransforms, TransformBitsDoNotDependOnTheBuild) {
#if defined(__FMA__)
  std::printf("[ info ] this test was compiled with FMA instructions enabled\n");
#endif
  Fnv1a log_hash, sincos_hash, normal_hash;
  for (uint32_t m = 1; m <= (1u << 24); ++m) log_hash.add(philox::bits_of(philox::log_unit(static_cast<float>(m) * 0x1p-24f)));
  for (uint32_t k = 0; k < (1u << 24); ++k) {
    float s, c;
    philox::sincos_turns(k, s, c);
    sincos_hash.add(philox::bits_of(s));
    sincos_hash.add(philox::bits_of(c));
  }
  for (uint64_t i = 0; i < (1u << 20); ++i) {
    float z[4];
    philox::normal4(philox::random_block(1234, i), z);
    for (float v : z) normal_hash.add(philox::bits_of(v));
  }
  EXPECT_EQ(log_hash.h, 0xe3bcb93250252016ull);
  EXPECT_EQ(sincos_hash.h, 0xf510d90d2c6c9e25ull);
  EXPECT_EQ(normal_hash.h, 0x27efd48bac16647bull);
}

TEST(PhiloxTransforms, UniformIsExactAndBelowOne) {
  EXPECT_EQ(philox::uniform01(0u), 0.0f);
  EXPECT_EQ(philox::uniform01(0xffffffffu), 1.0f - 0x1p-24f);
  EXPECT_EQ(philox::uniform01(0x80000000u), 0.5f);
  EXPECT_EQ(philox::uniform01(0x12345678u), static_cast<float>(0x123456u) / 16777216.0f);
  // The rounding tie: 1 + (1 - 2^-24) rounds to 2; uniform_in moves it below 2.
  EXPECT_EQ(1.0f + (1.0f - 0x1p-24f), 2.0f);
  EXPECT_EQ(philox::uniform_in(1.0f - 0x1p-24f, 1.0f, 2.0f), 2.0f - 0x1p-23f);
  EXPECT_EQ(philox::uniform_in(0.0f, -3.0f, 5.0f), -3.0f);
  EXPECT_EQ(philox::uniform_in(0.5f, -3.0f, 5.0f), 1.0f);
  EXPECT_EQ(philox::uniform_in(0.7f, 2.0f, 2.0f), 2.0f);  // empty range: low
  EXPECT_EQ(philox::float_below(1.0f), 1.0f - 0x1p-24f);
  EXPECT_EQ(philox::float_below(-1.0f), -1.0f - 0x1p-23f);
  EXPECT_EQ(philox::float_below(0.0f), -std::numeric_limits<float>::denorm_min());
}

// ---------------------------------------------------------------------------
// The documented element -> block mapping (core/rng.cpp)
// ---------------------------------------------------------------------------

TEST(Rng, RandUsesWordIMod4OfBlockIDiv4) {
  Generator gen(42);
  gen.set_offset(1000);
  const std::vector<float> v = rand({3, 5}, gen).to_vector();  // 15 elements: 4 blocks
  EXPECT_EQ(gen.offset(), 1004u);
  for (int64_t i = 0; i < 15; ++i) {
    const Block blk = philox::random_block(42, 1000 + i / 4);
    EXPECT_EQ(v[i], static_cast<float>(uniform_of_word(blk.w[i % 4]))) << "element " << i;
  }
}

TEST(Rng, RandnUsesBoxMullerPairsOfBlockIDiv4) {
  Generator gen(7);
  const std::vector<float> v = randn({9}, gen).to_vector();  // 3 blocks, the last used in part
  EXPECT_EQ(gen.offset(), 3u);
  for (int64_t i = 0; i < 9; ++i) {
    const Block blk = philox::random_block(7, i / 4);
    const int pair = static_cast<int>(i % 4) / 2;
    const double u1 = (static_cast<double>(blk.w[2 * pair] >> 8) + 1.0) / 16777216.0;
    const double theta = 2.0 * M_PI * uniform_of_word(blk.w[2 * pair + 1]);
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double expected = (i % 2 == 0) ? r * std::cos(theta) : r * std::sin(theta);
    EXPECT_NEAR(v[i], expected, 1e-6 * std::max(1.0, std::fabs(expected))) << "element " << i;
    float z[4];
    philox::normal4(blk, z);
    EXPECT_EQ(v[i], z[i % 4]) << "element " << i;
  }
}

TEST(Rng, RandintUses64BitWordsOfBlockIDiv2) {
  __extension__ typedef unsigned __int128 u128;
  Generator gen(3);
  gen.set_offset(5);
  const std::vector<int64_t> v = randint(-7, 1000003, {5}, gen).to_vector_i64();
  EXPECT_EQ(gen.offset(), 8u);  // ceil(5 / 2) blocks
  for (int64_t i = 0; i < 5; ++i) {
    const Block blk = philox::random_block(3, 5 + i / 2);
    const uint64_t x = blk.w[2 * (i % 2)] | (static_cast<uint64_t>(blk.w[2 * (i % 2) + 1]) << 32);
    const int64_t expected = -7 + static_cast<int64_t>((static_cast<u128>(x) * 1000010u) >> 64);
    EXPECT_EQ(v[i], expected) << "element " << i;
  }
}

// A fill uses whole blocks: rand(10) takes blocks 0..2 (12 words, 2 dropped),
// the next rand(6) blocks 3..4, so they are elements [0, 10) and [12, 18) of rand(20).
TEST(Rng, FillsUseWholeBlocksAndContinueAfterThem) {
  Generator a(11), b(11);
  const std::vector<float> first = rand({10}, a).to_vector();
  const std::vector<float> second = rand({6}, a).to_vector();
  const std::vector<float> all = rand({20}, b).to_vector();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(first[i], all[i]);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(second[i], all[12 + i]);
  EXPECT_EQ(a.offset(), 5u);
  EXPECT_EQ(b.offset(), 5u);
  Tensor empty = Tensor::empty({0, 3});
  uniform_(empty, 0.0f, 1.0f, a);
  EXPECT_EQ(a.offset(), 5u) << "an empty fill consumes no blocks";
}

// ---------------------------------------------------------------------------
// Statistics (1M samples; bounds are 5 standard errors, so a correct
// generator fails one with probability ~1e-6)
// ---------------------------------------------------------------------------

constexpr int64_t kSamples = 1 << 20;

TEST(Rng, UniformMoments) {
  Generator gen(1);
  Tensor t = Tensor::empty({kSamples});
  uniform_(t, -2.0f, 6.0f, gen);
  const std::vector<float> v = t.to_vector();
  const double n = static_cast<double>(kSamples);
  // U(a, b): mean (a+b)/2 = 2, variance (b-a)^2/12 = 16/3; Var of (U - mu)^2 is
  // (b-a)^4 (1/80 - 1/144).
  const double mean = mean_of(v), var = central_moment(v, 2.0, 2);
  EXPECT_NEAR(mean, 2.0, 5 * std::sqrt(16.0 / 3.0 / n));
  EXPECT_NEAR(var, 16.0 / 3.0, 5 * std::sqrt(4096.0 * (1.0 / 80 - 1.0 / 144) / n));
  // Each tenth of the range gets a tenth of the samples.
  std::vector<double> counts(10, 0);
  for (float x : v) counts[std::min(9, static_cast<int>((x + 2.0f) / 0.8f))] += 1;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - n / 10) * (c - n / 10) / (n / 10);
  EXPECT_LT(chi2, 27.88) << "chi-square, 9 degrees of freedom, p = 0.001";
}

TEST(Rng, NormalMoments) {
  Generator gen(2);
  Tensor t = Tensor::empty({kSamples});
  normal_(t, 3.0f, 2.0f, gen);
  std::vector<float> v = t.to_vector();
  for (float& x : v) x = (x - 3.0f) / 2.0f;  // back to N(0, 1)
  const double n = static_cast<double>(kSamples);
  const double mean = mean_of(v);
  EXPECT_NEAR(mean, 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(central_moment(v, 0, 2), 1.0, 5 * std::sqrt(2.0 / n));
  EXPECT_NEAR(central_moment(v, 0, 3), 0.0, 5 * std::sqrt(15.0 / n));  // Var z^3 = 15
  EXPECT_NEAR(central_moment(v, 0, 4), 3.0, 5 * std::sqrt(96.0 / n));  // Var z^4 = 105 - 9
  // Tail mass: P(|z| > 2) = 0.0455003.
  double beyond = 0;
  for (float x : v) beyond += std::fabs(x) > 2.0f;
  EXPECT_NEAR(beyond / n, 0.0455003, 5 * std::sqrt(0.0455 * 0.9545 / n));
  // The two normals of a Box-Muller pair are uncorrelated.
  std::vector<float> even, odd;
  for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
    even.push_back(v[i]);
    odd.push_back(v[i + 1]);
  }
  EXPECT_LT(std::fabs(correlation(even, odd)), 5 / std::sqrt(n / 2));
}

TEST(Rng, RandintChiSquare) {
  Generator gen(3);
  const std::vector<int64_t> v = randint(-3, 7, {kSamples}, gen).to_vector_i64();
  std::vector<double> counts(10, 0);
  for (int64_t x : v) {
    ASSERT_GE(x, -3);
    ASSERT_LT(x, 7);
    counts[x + 3] += 1;
  }
  const double expected = static_cast<double>(kSamples) / 10;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 27.88) << "chi-square, 9 degrees of freedom, p = 0.001";
}

TEST(Rng, RandintWideRanges) {
  Generator gen(4);
  // A range above 2^32: [0, 3 * 2^40); each third is hit a third of the time.
  const int64_t third = int64_t{1} << 40;
  const std::vector<int64_t> v = randint(0, 3 * third, {300000}, gen).to_vector_i64();
  std::vector<double> counts(3, 0);
  for (int64_t x : v) {
    ASSERT_GE(x, 0);
    ASSERT_LT(x, 3 * third);
    counts[x / third] += 1;
  }
  double chi2 = 0;
  for (double c : counts) chi2 += (c - 100000.0) * (c - 100000.0) / 100000.0;
  EXPECT_LT(chi2, 13.82) << "chi-square, 2 degrees of freedom, p = 0.001";
  // The widest range int64 allows: [INT64_MIN, INT64_MAX); both signs appear.
  const std::vector<int64_t> w = randint(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                                         {1000}, gen).to_vector_i64();
  int64_t negatives = 0;
  for (int64_t x : w) {
    EXPECT_LT(x, std::numeric_limits<int64_t>::max());
    negatives += x < 0;
  }
  EXPECT_GT(negatives, 400);
  EXPECT_LT(negatives, 600);
  // A one-value range.
  for (int64_t x : randint(5, 6, {50}, gen).to_vector_i64()) EXPECT_EQ(x, 5);
}

TEST(Rng, UniformStaysInsideItsRange) {
  Generator gen(5);
  const float ranges[][2] = {{0.0f, 1.0f}, {1.0f, 2.0f}, {-1.0f, 1.0f}, {-1e-3f, 1e-3f}, {100.0f, 100.5f}};
  for (const auto& r : ranges) {
    Tensor t = Tensor::empty({kSamples});
    uniform_(t, r[0], r[1], gen);
    const std::vector<float> v = t.to_vector();
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    EXPECT_GE(*lo, r[0]);
    EXPECT_LT(*hi, r[1]);
    EXPECT_LT(*lo, r[0] + 1e-4f * (r[1] - r[0]));  // and it reaches both ends
    EXPECT_GT(*hi, r[1] - 1e-4f * (r[1] - r[0]));
  }
  Tensor t = Tensor::empty({8});
  uniform_(t, 2.5f, 2.5f, gen);  // low == high, as PyTorch allows: every value is low
  for (float x : t.to_vector()) EXPECT_EQ(x, 2.5f);
}

// ---------------------------------------------------------------------------
// Reproducibility and independence
// ---------------------------------------------------------------------------

TEST(Rng, SameSeedAndOffsetGiveTheSameBits) {
  Generator a(123), b(123);
  a.set_offset(77);
  b.set_offset(77);
  EXPECT_EQ(randn({1000}, a).to_vector(), randn({1000}, b).to_vector());
  EXPECT_EQ(a.offset(), 77u + 250u);
  // Restoring the offset replays the draw.
  const uint64_t saved = a.offset();
  const std::vector<float> draw = rand({33}, a).to_vector();
  a.set_offset(saved);
  EXPECT_EQ(rand({33}, a).to_vector(), draw);
  // manual_seed resets the offset.
  a.manual_seed(123);
  Generator fresh(123);
  EXPECT_EQ(randint(0, 1000, {17}, a).to_vector_i64(), randint(0, 1000, {17}, fresh).to_vector_i64());
}

TEST(Rng, DifferentSeedsOffsetsAndConsecutiveFillsAreIndependent) {
  const int64_t n = 1 << 18;
  Generator seed0(0), seed1(1), far(0);
  far.set_offset(uint64_t{1} << 40);
  const std::vector<float> a = randn({n}, seed0).to_vector();
  const std::vector<float> next = randn({n}, seed0).to_vector();  // consecutive fill
  const std::vector<float> b = randn({n}, seed1).to_vector();
  const std::vector<float> c = randn({n}, far).to_vector();
  const double bound = 5 / std::sqrt(static_cast<double>(n));
  for (const std::vector<float>* other : {&next, &b, &c}) {
    int64_t equal = 0;
    for (int64_t i = 0; i < n; ++i) equal += a[i] == (*other)[i];
    EXPECT_LT(equal, 10) << "streams share values";
    EXPECT_LT(std::fabs(correlation(a, *other)), bound);
  }
  // Neighbouring blocks of one stream are uncorrelated too (lag 4 = next block, same lane).
  std::vector<float> head(a.begin(), a.end() - 4), lagged(a.begin() + 4, a.end());
  EXPECT_LT(std::fabs(correlation(head, lagged)), bound);
}

TEST(Rng, DefaultGeneratorAndManualSeed) {
  manual_seed(2718);
  EXPECT_EQ(default_generator().seed(), 2718u);
  EXPECT_EQ(default_generator().offset(), 0u);
  const std::vector<float> from_default = rand({10}).to_vector();
  Generator gen(2718);
  EXPECT_EQ(from_default, rand({10}, gen).to_vector());
  EXPECT_EQ(default_generator().offset(), 3u);
}

TEST(Rng, RandpermIsAReproduciblePermutation) {
  for (int64_t n : {2, 3, 10, 1001}) {
    Generator a(9), b(9), c(10);
    const std::vector<int64_t> p = randperm(n, a);
    std::vector<int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> identity(n);
    std::iota(identity.begin(), identity.end(), 0);
    EXPECT_EQ(sorted, identity) << "n = " << n;
    EXPECT_EQ(randperm(n, b), p);
    EXPECT_EQ(a.offset(), static_cast<uint64_t>((n - 1 + 1) / 2)) << "ceil((n-1)/2) blocks";
    if (n >= 10) {
      EXPECT_NE(randperm(n, c), p);
    }
  }
  Generator gen(1);
  EXPECT_TRUE(randperm(0, gen).empty());
  EXPECT_EQ(randperm(1, gen), std::vector<int64_t>{0});
  EXPECT_EQ(gen.offset(), 0u);
}

// Fisher-Yates by hand from the documented draws, for n = 5.
TEST(Rng, RandpermFollowsTheDocumentedDraws) {
  Generator gen(31);
  gen.set_offset(4);
  const std::vector<int64_t> p = randperm(5, gen);
  std::vector<int64_t> expected = {0, 1, 2, 3, 4};
  for (int64_t d = 0; d < 4; ++d) {
    const Block blk = philox::random_block(31, 4 + d / 2);
    const uint64_t x = blk.w[2 * (d % 2)] | (static_cast<uint64_t>(blk.w[2 * (d % 2) + 1]) << 32);
    const int64_t i = 4 - d;
    __extension__ typedef unsigned __int128 u128;
    const int64_t j = static_cast<int64_t>((static_cast<u128>(x) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(expected[i], expected[j]);
  }
  EXPECT_EQ(p, expected);
  EXPECT_EQ(gen.offset(), 6u);
}

// All 6 orders of 3 elements are equally likely.
TEST(Rng, RandpermIsUniform) {
  Generator gen(8);
  std::map<std::vector<int64_t>, double> counts;
  const int trials = 60000;
  for (int t = 0; t < trials; ++t) counts[randperm(3, gen)] += 1;
  ASSERT_EQ(counts.size(), 6u);
  double chi2 = 0;
  for (const auto& [perm, c] : counts) chi2 += (c - trials / 6.0) * (c - trials / 6.0) / (trials / 6.0);
  EXPECT_LT(chi2, 20.52) << "chi-square, 5 degrees of freedom, p = 0.001";
}

TEST(Rng, BitsDoNotDependOnTheThreadCount) {
  const int threads_before = omp_get_max_threads();
  const Shape shape{3, 1 << 18};  // well above the threshold for going parallel
  std::vector<std::vector<float>> uniforms, normals;
  std::vector<std::vector<int64_t>> ints;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    Generator gen(77);
    gen.set_offset(12345);
    uniforms.push_back(rand(shape, gen).to_vector());
    normals.push_back(randn(shape, gen).to_vector());
    ints.push_back(randint(-50, 50, shape, gen).to_vector_i64());
  }
  omp_set_num_threads(threads_before);
  for (std::size_t k = 1; k < uniforms.size(); ++k) {
    EXPECT_EQ(uniforms[k], uniforms[0]);
    EXPECT_EQ(normals[k], normals[0]);
    EXPECT_EQ(ints[k], ints[0]);
  }
}

// ---------------------------------------------------------------------------
// Bad arguments: clear messages, and the generator does not advance
// ---------------------------------------------------------------------------

TEST(Rng, BadArgumentsThrowWithClearMessages) {
  Generator gen(1);
  expect_error_mentions([&] { randint(5, 5, {3}, gen); }, {"randint", "low < high", "low=5", "high=5"});
  expect_error_mentions([&] { randint(9, 2, {3}, gen); }, {"randint", "low=9", "high=2"});
  Tensor f = Tensor::empty({4});
  expect_error_mentions([&] { normal_(f, 0.0f, -1.0f, gen); }, {"normal_", "std", ">= 0", "-1"});
  expect_error_mentions([&] { normal_(f, 0.0f, std::nanf(""), gen); }, {"normal_", "std"});
  expect_error_mentions([&] { uniform_(f, 2.0f, 1.0f, gen); }, {"uniform_", "low <= high", "low=2", "high=1"});
  expect_error_mentions([&] { uniform_(f, 0.0f, INFINITY, gen); }, {"uniform_", "finite"});
  expect_error_mentions([&] { uniform_(f, -3e38f, 3e38f, gen); }, {"uniform_", "overflows"});
  Tensor i64 = Tensor::zeros({4}, DType::I64);
  expect_error_mentions([&] { uniform_(i64, 0.0f, 1.0f, gen); }, {"uniform_", "F32", "I64"});
  expect_error_mentions([&] { normal_(i64, 0.0f, 1.0f, gen); }, {"normal_", "F32", "I64"});
  Tensor undefined;
  expect_error_mentions([&] { uniform_(undefined, 0.0f, 1.0f, gen); }, {"uniform_", "undefined"});
  expect_error_mentions([&] { randperm(-1, gen); }, {"randperm", "n >= 0", "-1"});
  expect_error_mentions([&] { rand({2}, gen, Device::cuda()); }, {"rand", "CUDA"});
  expect_error_mentions([&] { randn({2}, gen, Device::cuda()); }, {"randn", "CUDA"});
  expect_error_mentions([&] { randint(0, 2, {2}, gen, Device::cuda()); }, {"randint", "CUDA"});
  EXPECT_EQ(gen.offset(), 0u) << "a rejected call must not consume blocks";
}

}  // namespace
}  // namespace engine
