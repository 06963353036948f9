// Vectorisable float exp and erf for the CPU kernels (GELU forward and
// backward, kernels/cpu/activation.cpp).
//
// Why not expf / erff from <cmath>? They are scalar library calls: a loop
// that calls them cannot be vectorised (GCC only does so with -ffast-math and
// glibc's libmvec); with them the GELU cost ~15 ns per element and thread.
// The functions here are straight-line float code -- multiplies, fused
// multiply-adds, compares turned into selects, integer bit tricks -- with no
// branch and no table, so GCC (-O3 -mavx2 -mfma) turns a loop over them into
// 8-wide AVX2 code.
//
// Accuracy, measured exhaustively over all 2^32 floats against the exact
// functions (std::erf, std::exp in double) in units of the result's float
// ulp (tests/ops/fast_math_test.cpp: the exhaustive runs are DISABLED_
// there because they take minutes; dense sweeps run every time):
//   erf:  max 0.997 ulp (at x = -0.9628); glibc's erff: max 0.968 ulp.
//   exp:  max 1.014 ulp over [-87.34, 88]; results below 2^-126 (y < -87.34)
//         are flushed to 0 (expf would return a subnormal there, an absolute
//         difference below 1.2e-38).
// Neither is biased: over x ~ N(0, 1.5^2), the mean signed error of the fast
// GELU (forward and derivative) is as small as that of the erff-based one,
// and so is the mean absolute error (2.1e-8 both).
// Special values: NaN in -> NaN out; erf(+-inf) = +-1, erf(-0) = -0;
// exp(-inf) = 0, exp(+inf) = +inf (y > 88 -> +inf; expf overflows at 88.72).
//
// Every multiply-add is written as std::fma: one rounding, and the same bits
// whether the compiler vectorises the loop or runs the scalar remainder, and
// whatever it decides about contracting a * b + c (with -mfma std::fma is a
// single instruction; without it a correctly rounded library call, so the
// bits still agree).
//
// The coefficients were fitted for this file in double precision (numpy) by
// Lawson's algorithm: weighted least squares, repeated with each point's
// weight multiplied by its last absolute residual, which converges to the
// minimax (equi-oscillating) polynomial; 4000 equally spaced points per
// interval, 200 iterations, the error weights given with each fit below;
// then rounded to float. Each fit's own error is far below float rounding:
// the errors that remain are those of evaluating in float.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace engine::cpu::fast {

// select(condition, a, b) = condition ? a : b, written as bit arithmetic:
// the mask is all ones when condition holds and all zeros otherwise. Both a
// and b are computed anyway (no branch), and the compiler vectorises this
// into a compare and a blend. A plain `c ? a : b` on floats is not vectorised
// by GCC here: it moves the computation of the unused side into a branch,
// and then (with the default -ftrapping-math: floating-point operations may
// raise exceptions) cannot execute it unconditionally again.
inline float select(bool condition, float if_true, float if_false) {
  const uint32_t mask = 0u - static_cast<uint32_t>(condition);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(if_true) & mask) |
                              (std::bit_cast<uint32_t>(if_false) & ~mask));
}

// Horner's rule with fused multiply-adds: c[K] + u (c[K+1] + u (... + u c[N-1])).
// Written as compile-time recursion rather than a loop so that the loop over
// elements calling it has no inner loop (GCC does not vectorise an outer loop
// around an inner one that it has not unrolled yet).
template <int K = 0, int N>
inline float polynomial(float u, const float (&c)[N]) {
  if constexpr (K == N - 1) {
    return c[K];
  } else {
    return std::fma(polynomial<K + 1>(u, c), u, c[K]);
  }
}

// ---------------------------------------------------------------------------
// exp(y)
//
// Range reduction: write y = n ln2 + r with n = round(y / ln2), an integer,
// and |r| <= ln2 / 2 ~ 0.347. Then e^y = 2^n e^r, where 2^n is exact (built
// from its exponent bits) and e^r is a polynomial on a short interval.
//
//  * n: adding 1.5 * 2^23 to y / ln2 pushes its fraction bits out of the
//    float, so the sum is rounded to an integer (round to nearest even), and
//    that integer sits in the low mantissa bits: bits(sum) - bits(1.5 * 2^23)
//    = n. Subtracting 1.5 * 2^23 again gives n as a float.
//  * r = y - n ln2 must be computed accurately although y and n ln2 nearly
//    cancel: ln2 is split into ln2_hi = float(ln2) and the small remainder
//    ln2_lo = ln2 - ln2_hi; each fma rounds once (Cody and Waite's method).
//  * e^r = 1 + r + r^2 S(r), S of degree 4 fitted to (e^r - 1 - r) / r^2 with
//    relative weight 1/e^r on [-ln2/2, ln2/2]: fit error 3e-9 relative.
//    Keeping 1 + r exact and adding the small r^2 S(r) last keeps the
//    rounding error near half an ulp.
//  * 2^n: the float with exponent field n + 127 and zero mantissa, valid for
//    -126 <= n <= 127, i.e. for y in [-87.34, 88.0]; outside, the result is
//    0 (below) or +inf (above), chosen by selects after the computation.
// ---------------------------------------------------------------------------
namespace exp_constants {
constexpr float kLog2e = 1.44269504088896341f;       // 1 / ln 2
constexpr float kLn2Hi = 0.693147182464599609375f;   // float(ln 2)
constexpr float kLn2Lo = -1.90465429995776763e-09f;  // ln 2 - kLn2Hi
constexpr float kRoundingShift = 12582912.0f;        // 1.5 * 2^23
constexpr float kMinArgument = -87.3365447505531f;   // ln(2^-126): the smallest normal result
constexpr float kMaxArgument = 88.0f;                // n = round(88 / ln 2) = 127: largest exponent
constexpr float kS[5] = {0.49999994f, 0.16666521f, 0.04166839f, 0.008368709f, 0.0013814555f};
}  // namespace exp_constants

inline float exp(float y) {
  using namespace exp_constants;
  // Clamp first so that the integer n stays within [-126, 127]; a NaN passes
  // both comparisons (they are false) and stays NaN.
  const float clamped_below = select(y < kMinArgument, kMinArgument, y);
  const float clamped = select(clamped_below > kMaxArgument, kMaxArgument, clamped_below);
  const float shifted = std::fma(clamped, kLog2e, kRoundingShift);
  const int32_t n = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRoundingShift);
  const float n_float = shifted - kRoundingShift;
  float r = std::fma(n_float, -kLn2Hi, clamped);
  r = std::fma(n_float, -kLn2Lo, r);
  const float e_r = std::fma(r * r, polynomial(r, kS), r) + 1.0f;
  const float two_to_n = std::bit_cast<float>((n + 127) << 23);
  const float result = e_r * two_to_n;
  const float underflowed = select(y < kMinArgument, 0.0f, result);
  return select(y > kMaxArgument, INFINITY, underflowed);
}

// ---------------------------------------------------------------------------
// erf(x)
//
// erf is odd, so erf(x) = sign(x) erf(a) with a = |x| (std::copysign keeps
// erf(-0) = -0). For a >= 0, two approximations, both always computed (no
// branch) and one selected:
//
//  * a < 1: erf(a) / a is an even, entire function of a, so a polynomial in
//    t = a^2 approximates it well:
//        erf(a) = a (1 + y(t)),   y(t) = 2/sqrt(pi) - 1 - (2/sqrt(pi)) t/3 + ...
//    y of degree 6 in t, fitted with relative weight a / erf(a) (so that the
//    fit minimises the relative error of erf) on a in [0, 1]: fit error
//    1.2e-9 relative. Evaluating a + a y as one fma adds the small correction
//    a y (|y| <= 0.16) to the exact a, so y's rounding errors shrink by |y|.
//  * 1 <= a: erf(a) = 1 - erfc(a), and erfc falls like exp(-a^2): its
//    logarithm is smooth and nearly quadratic, so
//        erfc(a) = exp(Q(u)),   u = a - 1,   Q of degree 6,
//    fitted on a in [1, 4] with weight erfc(a): that minimises the absolute
//    error of erfc, which is what reaches 1 - erfc (whose ulp is 2^-24 for
//    every result in [0.5, 1)): fit error 1.0e-9 absolute. Expanding around
//    a = 1 (u = 0) keeps Q's evaluation accurate where erfc is largest
//    (0.157 at a = 1); where |Q| grows (and so do its rounding errors),
//    erfc is already tiny. Beyond a = 4, erfc(a) < 1.6e-8 is less than half
//    an ulp of 1, so erf rounds to 1: a is clamped to 4 (a NaN stays NaN).
// ---------------------------------------------------------------------------
namespace erf_constants {
constexpr float kSmall[7] = {0.12837917f,   -0.37612626f,    0.112835854f, -0.026853811f,
                             0.0051883254f, -0.00080101733f, 7.853787e-05f};
constexpr float kTail[7] = {-1.8496056f,   -2.6389668f,    -0.8431183f,   -0.0415007f,
                            0.009890908f, -0.0018261739f, 0.00018557651f};
constexpr float kSplit = 1.0f;  // a < kSplit: the polynomial; a >= kSplit: 1 - exp(Q)
constexpr float kSaturate = 4.0f;
}  // namespace erf_constants

inline float erf(float x) {
  using namespace erf_constants;
  const float a = std::fabs(x);
  const float near_zero = std::fma(a, polynomial(a * a, kSmall), a);
  const float a_tail = select(a > kSaturate, kSaturate, a);
  const float far = 1.0f - exp(polynomial(a_tail - kSplit, kTail));
  return std::copysign(select(a < kSplit, near_zero, far), x);
}

// ---------------------------------------------------------------------------
// GELU with the fast erf and exp: the same formulas as the readable reference
// in kernels/common/gelu_math.h (which calls erff and expf), evaluated in the
// same order, so the two differ only by the erf/exp errors above.
//     gelu(x)  = 0.5 x (1 + erf(x / sqrt 2))
//     gelu'(x) = Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)
// ---------------------------------------------------------------------------
constexpr float kInvSqrt2 = 0.70710678118654752440f;    // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1 / sqrt(2 pi)

inline float gelu(float x) { return 0.5f * x * (1.0f + erf(x * kInvSqrt2)); }

inline float gelu_derivative(float x) {
  const float cdf = 0.5f * (1.0f + erf(x * kInvSqrt2));
  const float pdf = kInvSqrt2Pi * exp(-0.5f * x * x);
  return std::fma(x, pdf, cdf);
}

}  // namespace engine::cpu::fast
