// Philox4x32-10, the counter-based random number generator of Salmon, Moraes,
// Dror and Shaw ("Parallel random numbers: as easy as 1, 2, 3", SC'11), and
// the transforms from its raw 32-bit words to floats: uniform in [0, 1) and
// standard normal (Box-Muller). This header is the ONE implementation: the
// CPU fills (core/rng.cpp) call it in their loops, the CUDA kernels will call
// it in their threads, and both must produce the same bits.
//
// 1. The generator
// ----------------
// Philox is a keyed bijection on 128-bit blocks:
//     block(key, counter) = 4 x 32-bit words
// The key is the 64-bit seed (two 32-bit words); the counter is 128 bits.
// Ten rounds scramble the counter. One round multiplies two of the four words
// by fixed odd constants M0, M1, keeps both halves (hi, lo) of the 64-bit
// products, and crosses them over, XOR-ing the key into the high halves:
//     (hi0, lo0) = M0 * c0          (hi1, lo1) = M1 * c2
//     c' = { hi1 ^ c1 ^ k0,  lo1,  hi0 ^ c3 ^ k1,  lo0 }
// Between rounds the key is "bumped" by the Weyl constants W0, W1 (the golden
// ratio and sqrt(3) - 1 in 32-bit fixed point), so each round sees a new key.
// The products spread every input bit over the high halves; ten rounds are
// enough to pass the BigCrush statistical battery with a safety margin.
//
// Nothing is carried from one block to the next: block i is a pure function
// of (seed, i), so any thread on any device can compute any block, in any
// order, and get the same words. Our counter layout:
//     counter = { lo32(index), hi32(index), stream, 0 }
// `index` is the 64-bit block number (the Generator's offset plus the block's
// position in a fill; core/rng.cpp documents which element uses which block).
// `stream` is a 32-bit sub-stream word, 0 for every draw today, kept so that
// independent families of draws (say, one per data-loader worker) can later
// share a seed without sharing blocks.
//
// 2. Words to floats
// ------------------
// uniform01(w): the top 24 bits of w times 2^-24. Every value k * 2^-24,
// k = 0 .. 2^24 - 1, is a float exactly, so the result is exact, lies in
// [0, 1), and is the same on every device.
//
// Box-Muller turns two uniforms into two independent standard normals:
//     r = sqrt(-2 ln u1),   theta = 2 pi u2,   z0 = r cos theta,  z1 = r sin theta
// with u1 in (0, 1] (never 0: ln 0 = -inf).
//
// 3. Why we write our own ln, sin and cos
// ----------------------------------------
// glibc's logf/sinf/cosf and CUDA's differ in the last bit for some inputs
// (both are accurate, neither is correctly rounded), so Box-Muller on libm
// would give CPU and GPU noise that differs in the last bit. Instead, ln and
// sin/cos are polynomials evaluated here with +, -, *, / and sqrt only. IEEE
// 754 defines those five operations as correctly rounded, so a fixed sequence
// of them gives the same bits on any conforming machine, provided
//   (a) nothing is evaluated in a wider format (x86-64 uses SSE, CUDA uses
//       f32 registers: fine), no -ffast-math / --use_fast_math (which
//       reassociate and approximate division and sqrt), and
//   (b) the compiler does not CONTRACT a product and a sum into one fused
//       multiply-add, fma(a, b, c) = a*b + c rounded once instead of twice.
// (b) is the real danger. C++ allows contraction within an expression; GCC
// contracts by default (-ffp-contract=fast, even in -std=c++20 mode) whenever
// FMA instructions are enabled, and our CPU build enables them (-mfma); nvcc
// contracts by default too (--fmad=true), but not necessarily the same pairs.
// `#pragma STDC FP_CONTRACT OFF` is honoured by Clang and ignored by GCC and
// `__attribute__((optimize("fp-contract=off")))` is unreliable once functions
// are inlined, so neither is a guarantee. What does guarantee it: every
// product in the transforms goes through mul_rn() below, which the compiler
// cannot fuse with the addition that follows:
//   - in CUDA device code, mul_rn is __fmul_rn, an intrinsic documented as
//     "never merged into a multiply-add";
//   - on the host, mul_rn computes the product and passes it through an empty
//     inline-asm statement that claims to modify it. The compiler must then
//     treat the value as unknown, so the later addition sees an opaque
//     operand, not a product, and there is nothing to contract. The asm emits
//     no instruction; it only forbids the rewrite.
// Divisions and square roots are never contracted; on the device we still
// spell them __fdiv_rn / __fsqrt_rn so that a -prec-div=false or
// -prec-sqrt=false build cannot swap in the approximate versions.
// The test TransformBitsDoNotDependOnTheBuild (tests/core/rng_test.cpp)
// hashes the outputs for all 2^24 inputs of each transform in our FMA-enabled
// build and compares against hashes computed by a build with FMA and
// contraction switched off (-O0 -mno-fma -ffp-contract=off).
//
// Accuracy: the polynomials are Taylor series truncated below 1e-8 relative
// error on their ranges, and the range reductions are exact, so over all 2^24
// inputs ln is within 5e-7 relative of the exact value and Box-Muller's
// normals within 1e-6 relative of the double-precision libm formula (tested).
#pragma once
#include <stdint.h>

#if !defined(__CUDA_ARCH__)
#include <string.h>  // memcpy: the host's well-defined way to reinterpret bits
#endif

#include "kernels/common/host_device.h"

namespace engine::philox {

// ---------------------------------------------------------------------------
// Philox4x32-10
// ---------------------------------------------------------------------------

constexpr uint32_t kM0 = 0xD2511F53u;  // round multipliers
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;  // key bumps: golden ratio and sqrt(3) - 1, as 0.32 fixed point
constexpr uint32_t kW1 = 0xBB67AE85u;
constexpr int kRounds = 10;

struct Block {  // four 32-bit words: a counter in, random words out
  uint32_t w[4];
};
struct Key {  // two 32-bit words
  uint32_t k[2];
};

// hi and lo halves of the 64-bit product a * b.
ENGINE_HOST_DEVICE void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

// One round: c' = { hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0 }.
ENGINE_HOST_DEVICE Block philox_round(const Block& c, const Key& key) {
  uint32_t hi0, lo0, hi1, lo1;
  mulhilo32(kM0, c.w[0], hi0, lo0);
  mulhilo32(kM1, c.w[2], hi1, lo1);
  Block out;
  out.w[0] = hi1 ^ c.w[1] ^ key.k[0];
  out.w[1] = lo1;
  out.w[2] = hi0 ^ c.w[3] ^ key.k[1];
  out.w[3] = lo0;
  return out;
}

// Philox4x32-10: ten rounds, the key bumped by (W0, W1) between rounds.
ENGINE_HOST_DEVICE Block philox4x32_10(Block counter, Key key) {
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) {
      key.k[0] += kW0;
      key.k[1] += kW1;
    }
    counter = philox_round(counter, key);
  }
  return counter;
}

// The engine's layout: key = the seed's two halves, counter = { lo32(index),
// hi32(index), stream, 0 }. Returns the four random words of block `index`.
ENGINE_HOST_DEVICE Block random_block(uint64_t seed, uint64_t index, uint32_t stream = 0) {
  const Key key{{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}};
  const Block counter{{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), stream, 0u}};
  return philox4x32_10(counter, key);
}

// ---------------------------------------------------------------------------
// Exactly rounded float operations that the compiler may not fuse (see 3.)
// ---------------------------------------------------------------------------

// a * b, rounded to float, never contracted with a following + or -.
ENGINE_HOST_DEVICE float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  float product = a * b;
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+x"(product));  // "x": the value lives in an SSE register; no instruction is emitted
#elif defined(__aarch64__) || defined(__arm__)
  __asm__("" : "+w"(product));  // "w": a floating-point/SIMD register
#else
  __asm__("" : "+g"(product));
#endif
  return product;
#endif
}

ENGINE_HOST_DEVICE float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

ENGINE_HOST_DEVICE float sqrt_rn(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return __builtin_sqrtf(a);  // sqrtss: correctly rounded; a >= 0 here, so no errno path
#endif
}

ENGINE_HOST_DEVICE uint32_t bits_of(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t bits;
  memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

ENGINE_HOST_DEVICE float float_of(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float x;
  memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

// ---------------------------------------------------------------------------
// Uniform
// ---------------------------------------------------------------------------

constexpr float kTwoPowMinus24 = 0x1p-24f;

// The top 24 bits of w as k * 2^-24: exact, in [0, 1).
ENGINE_HOST_DEVICE float uniform01(uint32_t w) { return static_cast<float>(w >> 8) * kTwoPowMinus24; }

// The largest float strictly below x (x finite).
ENGINE_HOST_DEVICE float float_below(float x) {
  const uint32_t bits = bits_of(x);
  if ((bits & 0x7FFFFFFFu) == 0) return -float_of(1u);  // below +-0: the smallest negative subnormal
  return float_of((bits & 0x80000000u) ? bits + 1u : bits - 1u);  // away from 0 if negative, towards if positive
}

// low + u * (high - low) for u in [0, 1), as PyTorch's uniform_ computes it.
// Rounding can land exactly on `high` (u = 1 - 2^-24, low = 1, high = 2 gives
// 1 + (1 - 2^-24), a tie that rounds to 2); such a value is moved down to the
// float just below `high`, so the result is always in [low, high) when low < high.
ENGINE_HOST_DEVICE float uniform_in(float u, float low, float high) {
  const float value = low + mul_rn(u, high - low);
  return (value >= high && high > low) ? float_below(high) : value;
}

// ---------------------------------------------------------------------------
// Natural log on (0, 1] from + - * / only
// ---------------------------------------------------------------------------
//
// Split u = 2^e * f with f in [sqrt(1/2), sqrt(2)) by reading the exponent
// bits (exact), so ln u = e ln 2 + ln f. With s = (f - 1) / (f + 1), |s| <= 0.1716,
//     ln f = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + s^7/7 + s^9/9 + ...)
// and the first omitted term, s^11/11, is below 2e-9 of the sum. f - 1 is
// exact (Sterbenz: f is within a factor 2 of 1). ln 2 is split into a high
// part with 15 significant bits, so e * ln2_hi is exact for |e| < 512, and a
// low part that carries the rest.

constexpr float kSqrt2 = 0x1.6a09e6p+0f;       // 1.41421354 (sqrt 2 rounded to float)
constexpr float kLn2Hi = 0x1.62e4p-1f;         // 0.693145752 (ln 2, top 15 bits)
constexpr float kLn2Lo = 0x1.7f7d1cp-20f;      // 1.42860677e-6 (ln 2 - kLn2Hi)
constexpr float kInv3 = 0x1.555556p-2f;        // 1/3
constexpr float kInv5 = 0x1.99999ap-3f;        // 1/5
constexpr float kInv7 = 0x1.24924ap-3f;        // 1/7
constexpr float kInv9 = 0x1.c71c72p-4f;        // 1/9

// ln u for a normal (not subnormal) float u in (0, 1].
ENGINE_HOST_DEVICE float log_unit(float u) {
  const uint32_t bits = bits_of(u);
  int exponent = static_cast<int>(bits >> 23) - 127;
  float f = float_of((bits & 0x007FFFFFu) | 0x3F800000u);  // the mantissa as a float in [1, 2)
  if (f > kSqrt2) {  // move f into [sqrt(1/2), sqrt(2)): halving is exact
    f = mul_rn(f, 0.5f);
    exponent += 1;
  }
  const float s = div_rn(f - 1.0f, f + 1.0f);
  const float s2 = mul_rn(s, s);
  // 1 + s^2/3 + s^4/5 + s^6/7 + s^8/9 by Horner, innermost first.
  float series = kInv9;
  series = kInv7 + mul_rn(s2, series);
  series = kInv5 + mul_rn(s2, series);
  series = kInv3 + mul_rn(s2, series);
  series = 1.0f + mul_rn(s2, series);
  const float ln_f = mul_rn(mul_rn(2.0f, s), series);
  const float e = static_cast<float>(exponent);
  return mul_rn(e, kLn2Hi) + (mul_rn(e, kLn2Lo) + ln_f);
}

// ---------------------------------------------------------------------------
// sin and cos of 2 pi k / 2^24 from + - * only
// ---------------------------------------------------------------------------
//
// The angle is a whole number k of 2^-24 turns, so the range reduction is
// integer arithmetic and exact: write k = q * 2^22 + m with q = the nearest
// quarter turn (k + 2^21) >> 22 and m in [-2^21, 2^21), so
//     theta = 2 pi k / 2^24 = q pi/2 + (pi/2) t,   t = m / 2^22 in [-0.5, 0.5)
// (t is exact: 22 bits). On |t| <= 1/2, i.e. |x| = |pi/2 t| <= pi/4,
//     sin(pi/2 t) = sum_j (-1)^j (pi/2)^(2j+1) t^(2j+1) / (2j+1)!   up to t^9
//     cos(pi/2 t) = sum_j (-1)^j (pi/2)^(2j)   t^(2j)   / (2j)!     up to t^10
// whose first omitted terms are below 3e-9 and 2e-10 of the values. The
// quarter q mod 4 then rotates (cos x, sin x) by q right angles:
//     q = 0: ( cos x,  sin x)   q = 1: (-sin x,  cos x)
//     q = 2: (-cos x, -sin x)   q = 3: ( sin x, -cos x)
// Because t is exact, small sines come out with full relative accuracy, also
// where cos theta or sin theta is near 0.

constexpr float kS1 = 0x1.921fb6p+0f;    //  (pi/2)          = 1.57079637
constexpr float kS3 = -0x1.4abbcep-1f;   // -(pi/2)^3 / 3!   = -0.645964086
constexpr float kS5 = 0x1.466bc6p-4f;    //  (pi/2)^5 / 5!   = 0.0796926245
constexpr float kS7 = -0x1.32d2ccp-8f;   // -(pi/2)^7 / 7!   = -0.00468175393
constexpr float kS9 = 0x1.507834p-13f;   //  (pi/2)^9 / 9!   = 0.000160441181
constexpr float kC2 = -0x1.3bd3ccp+0f;   // -(pi/2)^2 / 2!   = -1.23370051
constexpr float kC4 = 0x1.03c1f0p-2f;    //  (pi/2)^4 / 4!   = 0.2536695
constexpr float kC6 = -0x1.55d3c8p-6f;   // -(pi/2)^6 / 6!   = -0.0208634809
constexpr float kC8 = 0x1.e1f506p-11f;   //  (pi/2)^8 / 8!   = 0.000919260259
constexpr float kC10 = -0x1.a6d1f2p-16f; // -(pi/2)^10 / 10! = -2.52020418e-5

// cos and sin of theta = 2 pi k / 2^24 for k in [0, 2^24).
ENGINE_HOST_DEVICE void sincos_turns(uint32_t k, float& sin_theta, float& cos_theta) {
  const uint32_t quarter = (k + (1u << 21)) >> 22;  // 0..4; 4 is a full turn, the same as 0
  const int32_t m = static_cast<int32_t>(k) - static_cast<int32_t>(quarter << 22);
  const float t = static_cast<float>(m) * 0x1p-22f;  // exact
  const float t2 = mul_rn(t, t);
  float sin_poly = kS9;
  sin_poly = kS7 + mul_rn(t2, sin_poly);
  sin_poly = kS5 + mul_rn(t2, sin_poly);
  sin_poly = kS3 + mul_rn(t2, sin_poly);
  sin_poly = kS1 + mul_rn(t2, sin_poly);
  const float sin_x = mul_rn(t, sin_poly);
  float cos_poly = kC10;
  cos_poly = kC8 + mul_rn(t2, cos_poly);
  cos_poly = kC6 + mul_rn(t2, cos_poly);
  cos_poly = kC4 + mul_rn(t2, cos_poly);
  cos_poly = kC2 + mul_rn(t2, cos_poly);
  const float cos_x = 1.0f + mul_rn(t2, cos_poly);
  switch (quarter & 3u) {
    case 0: cos_theta = cos_x;  sin_theta = sin_x;  break;
    case 1: cos_theta = -sin_x; sin_theta = cos_x;  break;
    case 2: cos_theta = -cos_x; sin_theta = -sin_x; break;
    default: cos_theta = sin_x; sin_theta = -cos_x; break;
  }
}

// ---------------------------------------------------------------------------
// Normal
// ---------------------------------------------------------------------------

// Box-Muller on two random words a, b:
//     u1 = (top24(a) + 1) * 2^-24 in (0, 1]      (never 0)
//     theta = 2 pi top24(b) / 2^24              (in [0, 2 pi))
//     r = sqrt(-2 ln u1)                        (at most sqrt(48 ln 2) = 5.77)
//     z0 = r cos theta,  z1 = r sin theta       (two independent N(0, 1))
ENGINE_HOST_DEVICE void box_muller(uint32_t a, uint32_t b, float& z0, float& z1) {
  const float u1 = static_cast<float>((a >> 8) + 1u) * kTwoPowMinus24;
  const float r = sqrt_rn(mul_rn(-2.0f, log_unit(u1)));
  float sin_theta, cos_theta;
  sincos_turns(b >> 8, sin_theta, cos_theta);
  z0 = mul_rn(r, cos_theta);
  z1 = mul_rn(r, sin_theta);
}

// The four standard normals of one block: (w0, w1) -> z0, z1; (w2, w3) -> z2, z3.
ENGINE_HOST_DEVICE void normal4(const Block& block, float out[4]) {
  box_muller(block.w[0], block.w[1], out[0], out[1]);
  box_muller(block.w[2], block.w[3], out[2], out[3]);
}

// mean + z * std, as PyTorch's normal_ computes it (z * std + mean).
ENGINE_HOST_DEVICE float normal_scaled(float z, float mean, float stddev) { return mean + mul_rn(z, stddev); }

// ---------------------------------------------------------------------------
// Integers
// ---------------------------------------------------------------------------

// The high 64 bits of the 128-bit product a * b.
ENGINE_HOST_DEVICE uint64_t mulhi64(uint64_t a, uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  // Schoolbook on 32-bit halves: a = a1 2^32 + a0, b = b1 2^32 + b0.
  const uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
  const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const uint64_t middle = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);  // < 3 * 2^32: no overflow
  return p11 + (p01 >> 32) + (p10 >> 32) + (middle >> 32);
#endif
}

// An integer in [0, range) from 64 random bits x (range >= 1): floor(x * range / 2^64),
// Lemire's multiply-shift. Each of the `range` results is hit by floor(2^64 / range)
// or ceil(2^64 / range) of the 2^64 values of x, so its probability is 1/range
// within 2^-64: no modulo bias worth the name, and no loop (a rejection loop
// would make the number of words per element data-dependent, which a
// counter-based fill must avoid).
ENGINE_HOST_DEVICE uint64_t below(uint64_t x, uint64_t range) { return mulhi64(x, range); }

// Words (w[2h], w[2h+1]) of a block as one 64-bit value, h = 0 or 1.
ENGINE_HOST_DEVICE uint64_t word64(const Block& block, int half) {
  return static_cast<uint64_t>(block.w[2 * half]) | (static_cast<uint64_t>(block.w[2 * half + 1]) << 32);
}

}  // namespace engine::philox
