// The blocked GEMM against its specification, gemm_reference (the triple
// loop summing in double): every transpose combination, sizes that leave
// partial register tiles and partial cache blocks, leading dimensions wider
// than the matrices, alpha/beta, beta = 0 over NaN, K = 0, calls from inside
// a parallel region, and bit-identical results for 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace engine {
namespace {

std::vector<float> random_values(int64_t count, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& v : values) v = dist(gen);
  return values;
}

// One GEMM problem with its (possibly padded) storage. Padding columns of
// every matrix hold a sentinel that must survive the call untouched.
struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c;

  static constexpr float kSentinel = 12345.0f;

  Problem(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t pad, uint64_t seed)
      : trans_a(ta), trans_b(tb), M(m), N(n), K(k) {
    // Stored A is [M, K] or [K, M]; stored B is [K, N] or [N, K].
    const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
    const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
    lda = a_cols + pad;
    ldb = b_cols + pad;
    ldc = N + pad;
    a = padded(random_values(a_rows * a_cols, seed), a_rows, a_cols, lda);
    b = padded(random_values(b_rows * b_cols, seed + 1), b_rows, b_cols, ldb);
    c = padded(random_values(M * N, seed + 2), M, N, ldc);
  }

  static std::vector<float> padded(const std::vector<float>& dense, int64_t rows, int64_t cols, int64_t ld) {
    std::vector<float> out(static_cast<std::size_t>(std::max<int64_t>(rows * ld, 1)), kSentinel);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t col = 0; col < cols; ++col) out[r * ld + col] = dense[r * cols + col];
    return out;
  }

  // Runs `fn` on a copy of C and returns the result.
  template <typename Fn>
  std::vector<float> run(Fn fn, float alpha, float beta) const {
    std::vector<float> out = c;
    fn(trans_a, trans_b, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, out.data(), ldc);
    return out;
  }

  std::string name() const {
    return "trans_a=" + std::to_string(trans_a) + " trans_b=" + std::to_string(trans_b) + " M=" + std::to_string(M) +
           " N=" + std::to_string(N) + " K=" + std::to_string(K) + " ldc=" + std::to_string(ldc);
  }
};

// |fast - reference| <= tolerance for every element of C; padding untouched.
// The reference sums in double; the blocked float32 sum of K products of
// values in [-1, 1) errs by at most about K * 2^-24 * sum |a b| <= K^2 * 6e-8,
// in practice ~sqrt(K) * 6e-8: 1e-5 * (1 + K/64) is generous yet far below
// the size of any indexing mistake (O(0.1)).
void expect_matches_reference(const Problem& p, float alpha, float beta) {
  const std::vector<float> fast = p.run(cpu::gemm, alpha, beta);
  const std::vector<float> reference = p.run(cpu::gemm_reference, alpha, beta);
  const double tolerance = 1e-5 * (1.0 + static_cast<double>(p.K) / 64.0);
  int64_t failures = 0;
  for (int64_t i = 0; i < p.M; ++i) {
    for (int64_t j = 0; j < p.ldc; ++j) {
      const std::size_t at = static_cast<std::size_t>(i * p.ldc + j);
      if (j >= p.N) {
        if (fast[at] != Problem::kSentinel && failures++ < 5)
          ADD_FAILURE() << p.name() << ": padding C[" << i << ", " << j << "] was overwritten with " << fast[at];
        continue;
      }
      if (!(std::abs(fast[at] - reference[at]) <= tolerance) && failures++ < 5)
        ADD_FAILURE() << p.name() << " alpha=" << alpha << " beta=" << beta << ": C[" << i << ", " << j
                      << "] = " << fast[at] << ", reference " << reference[at];
    }
  }
  EXPECT_EQ(failures, 0) << p.name();
}

TEST(Gemm, AllTransposesOddSizesMatchReference) {
  // Sizes around the register tile (6 x 16, or 14 x 32 with AVX-512) and the
  // cache blocks (K block 192-256, M block 144-168, N block 512).
  const int64_t sizes[][3] = {{1, 1, 1},    {1, 7, 13},   {7, 1, 13},    {13, 7, 1},    {6, 16, 8},
                              {7, 17, 9},   {14, 32, 5},  {15, 33, 31},  {37, 45, 300}, {150, 70, 257},
                              {5, 530, 40}, {170, 19, 3}, {64, 100, 513}};
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const auto& s : sizes) expect_matches_reference(Problem(ta, tb, s[0], s[1], s[2], 0, 7), 1.0f, 0.0f);
}

TEST(Gemm, LeadingDimensionsWiderThanMatrices) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (int64_t pad : {1, 5, 16}) {
        expect_matches_reference(Problem(ta, tb, 13, 21, 17, pad, 11), 1.0f, 0.0f);
        expect_matches_reference(Problem(ta, tb, 70, 40, 260, pad, 12), 1.0f, 1.0f);
      }
}

TEST(Gemm, AlphaBeta) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const Problem p(ta, tb, 23, 35, 300, 3, 21);  // two K blocks: beta applies to the first only
      for (float alpha : {1.0f, -0.5f, 2.0f, 0.0f})
        for (float beta : {0.0f, 1.0f, 0.25f, -3.0f}) expect_matches_reference(p, alpha, beta);
    }
}

TEST(Gemm, BetaZeroIgnoresNaNInC) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Problem p(ta, tb, 19, 37, 29, 2, 31);
      for (int64_t i = 0; i < p.M; ++i)
        for (int64_t j = 0; j < p.N; ++j) p.c[i * p.ldc + j] = std::numeric_limits<float>::quiet_NaN();
      const std::vector<float> out = p.run(cpu::gemm, 1.5f, 0.0f);
      for (int64_t i = 0; i < p.M; ++i)
        for (int64_t j = 0; j < p.N; ++j)
          ASSERT_FALSE(std::isnan(out[i * p.ldc + j])) << p.name() << " C[" << i << ", " << j << "]";
      expect_matches_reference(p, 1.5f, 0.0f);
    }
}

TEST(Gemm, KZeroScalesC) {
  // op(A) op(B) is the zero matrix: C = beta C (beta = 0: zeros, even over NaN).
  for (float beta : {0.0f, 1.0f, 0.5f}) {
    Problem p(false, false, 5, 9, 0, 1, 41);
    p.c[0] = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> out = p.run(cpu::gemm, 1.0f, beta);
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) {
        const float expected = beta == 0.0f ? 0.0f : beta * p.c[i * p.ldc + j];
        if (i == 0 && j == 0 && beta != 0.0f)
          EXPECT_TRUE(std::isnan(out[0]));
        else
          EXPECT_EQ(out[i * p.ldc + j], expected) << "beta=" << beta << " C[" << i << ", " << j << "]";
      }
    EXPECT_EQ(out[p.N], Problem::kSentinel);  // the padding column
  }
}

TEST(Gemm, EmptyMOrNIsANoOp) {
  std::vector<float> a(4, 1.0f), b(4, 1.0f), c(4, 7.0f);
  cpu::gemm(false, false, 0, 2, 2, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2);
  cpu::gemm(false, false, 2, 0, 2, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2);
  for (float v : c) EXPECT_EQ(v, 7.0f);
}

// Bitwise comparison of two float arrays.
bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

TEST(Gemm, SameBitsForOneAndTwoThreads) {
  // Big enough to be split across threads (and, with two threads, into more
  // macro-tiles than with one), with edge tiles and several K blocks.
  const int max_threads = omp_get_max_threads();
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const auto& s : {std::vector<int64_t>{200, 300, 700}, std::vector<int64_t>{64, 100, 600},
                            std::vector<int64_t>{30, 1000, 50}}) {
        const Problem p(ta, tb, s[0], s[1], s[2], 1, 51);
        omp_set_num_threads(1);
        const std::vector<float> one = p.run(cpu::gemm, 0.75f, 0.5f);
        omp_set_num_threads(2);
        const std::vector<float> two = p.run(cpu::gemm, 0.75f, 0.5f);
        omp_set_num_threads(max_threads);
        EXPECT_TRUE(same_bits(one, two)) << p.name();
      }
}

TEST(Gemm, InsideParallelRegionGivesSameResult) {
  // conv2d calls gemm once per image from a parallel loop: each call must run
  // on its own thread and give exactly what a top-level call gives.
  const Problem p(false, true, 130, 530, 300, 0, 61);
  const std::vector<float> expected = p.run(cpu::gemm, 1.0f, 0.0f);
  constexpr int kCalls = 4;
  std::vector<std::vector<float>> results(kCalls);
#pragma omp parallel for num_threads(2) schedule(static)
  for (int call = 0; call < kCalls; ++call) results[call] = p.run(cpu::gemm, 1.0f, 0.0f);
  for (int call = 0; call < kCalls; ++call) EXPECT_TRUE(same_bits(results[call], expected)) << "call " << call;
}

}  // namespace
}  // namespace engine
