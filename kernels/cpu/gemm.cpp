// The blocked single-precision GEMM: C = alpha * op(A) op(B) + beta * C.
//
// Why blocking? The triple loop of gemm_reference performs 2 M N K flops but,
// for large matrices, reloads every element of A and B from memory or a far
// cache over and over: it runs at the speed of memory (2 GFLOP/s here), not
// of the FMA units (this GEMM: ~90 GFLOP/s per core). The classic Goto /
// BLIS algorithm reorganises the same arithmetic so that every value is
// loaded from a cache close to the core many times for each time it comes
// from memory:
//
//   for jc in 0..N step NC                                (B panel columns)
//     for pc in 0..K step KC                              (K blocks, in order)
//       pack op(B)[pc:pc+KC, jc:jc+NC] -> b_packed        (KC x NC: L2/L3)
//       for ic in 0..M step MC
//         pack op(A)[ic:ic+MC, pc:pc+KC] -> a_packed      (MC x KC: L2)
//         for jr in 0..NC step NR                         (one B micro-panel,
//           for ir in 0..MC step MR                        KC x NR, stays in L1)
//             micro-kernel: C[ic+ir : +MR, jc+jr : +NR] (+)= A micro-panel (MR x KC)
//                                                         * B micro-panel (KC x NR)
//
// * The micro-kernel keeps an MR x NR tile of C in vector registers for the
//   whole K block: each step k loads MR values of A (broadcast) and NR values
//   of B and performs MR * NR multiply-adds on them, without touching C.
//   With AVX2 (16 registers of 8 floats) the tile is 6 x 16: 12 accumulator
//   registers + 2 for the row of B + 1 for the broadcast of A = 15 of 16.
//   12 independent accumulators also hide the FMA latency (4 cycles, 2 FMA
//   pipes: at least 8 FMAs must be in flight). With AVX-512 (32 registers of
//   16 floats) it is 14 x 32: 28 accumulators + 2 + 1 = 31 of 32.
// * "Packing" copies the blocks of A and B into contiguous buffers in exactly
//   the order the micro-kernel reads them (A: MR-row panels, column by column;
//   B: NR-column panels, row by row). The micro-kernel then streams through
//   memory with unit stride whatever the transposes and leading dimensions
//   were, and edge panels are padded with zeros so the micro-kernel always
//   computes a full MR x NR tile (the padded rows/columns are discarded).
// * Cache levels: the B micro-panel (KC x NR floats = 16 KiB for AVX2) is
//   reused by all MC / MR micro-kernel calls of the ir loop, so it stays in
//   L1 (32 KiB); the packed A block (MC x KC = 144 KiB) is swept once per
//   jr step and stays in L2 (1 MiB per core); the packed B panel (KC x NC =
//   512 KiB) is reused by every A block of the ic loop and lives in L2/L3.
//
// Parallelism and determinism. With T threads, C is cut into T rectangles
// (one per thread) and each thread runs the loops above on its rectangle,
// packing into its own buffers: no element of C is written by two threads.
// Every element's K-sum always runs in the same order: K blocks of a size
// fixed by K alone, in increasing order; inside a block, k = 0, 1, ...
// through one FMA accumulator lane; then C = alpha * sum + C (beta * C on
// the first block). How C is cut depends on the thread count; it changes
// which thread computes an element, never how: results are bit-identical
// whatever the thread count. Inside an enclosing parallel region (conv runs
// one GEMM per image in a parallel loop) the GEMM runs on the calling thread
// only.
//
// The micro-kernel is plain C++ on GCC/Clang vector extensions (a `vfloat`
// is one SIMD register's worth of floats with elementwise + and *), and the
// compiler contracts a * b + c into one FMA instruction. See docs/gemm.md for
// the measured numbers.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "kernels/cpu/gemm.h"

namespace engine::cpu {
namespace {

// --- The register tile ---------------------------------------------------------
#if defined(__AVX512F__)
constexpr int kVectorWidth = 16;  // floats in one 512-bit zmm register
constexpr int kMR = 14;           // rows of the register tile
#else
constexpr int kVectorWidth = 8;  // floats in one 256-bit ymm register (AVX2)
constexpr int kMR = 6;
#endif
constexpr int kNRVectors = 2;                   // vectors per row of the tile
constexpr int kNR = kNRVectors * kVectorWidth;  // columns of the register tile (16 or 32)

// One SIMD register of floats. Arithmetic on it is elementwise; a scalar
// operand is broadcast. `may_alias` + `aligned(4)` make it legal to load and
// store it through any float pointer, aligned or not.
typedef float vfloat __attribute__((vector_size(kVectorWidth * sizeof(float))));
typedef float vfloat_unaligned __attribute__((vector_size(kVectorWidth * sizeof(float)), aligned(4), may_alias));

inline vfloat load(const float* p) { return *reinterpret_cast<const vfloat_unaligned*>(p); }
inline void store(float* p, vfloat v) { *reinterpret_cast<vfloat_unaligned*>(p) = v; }

// --- Cache blocking --------------------------------------------------------------
// KC: depth of a K block. The B micro-panel (KC x NR) must stay in L1 while
// the A micro-panels (MR x KC) stream past it.
// MC: rows of the packed A block (MC x KC in L2). NC: columns of the packed B
// panel. These are upper bounds; even_block() evens the blocks out.
#if defined(__AVX512F__)
constexpr int64_t kKCMax = 192;  // 192 x 32 floats = 24 KiB of B micro-panel
constexpr int64_t kMCMax = 168;  // 12 register tiles; 168 x 192 floats = 126 KiB
#else
constexpr int64_t kKCMax = 256;  // 256 x 16 floats = 16 KiB of B micro-panel
constexpr int64_t kMCMax = 144;  // 24 register tiles; 144 x 256 floats = 144 KiB
#endif
constexpr int64_t kNCMax = 512;  // 512 x KC floats = 384-512 KiB

// Below this many flops a GEMM runs on one thread: waking the OpenMP team
// (a few microseconds) would cost more than it saves.
constexpr double kMinParallelFlops = 2.0e6;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t multiple) { return ceil_div(a, multiple) * multiple; }

// Splits `extent` into ceil(extent / max_block) nearly equal blocks, each
// (except the last) a multiple of `granule`. Returns the block size.
int64_t even_block(int64_t extent, int64_t max_block, int64_t granule) {
  const int64_t blocks = ceil_div(extent, max_block);
  return std::min(round_up(ceil_div(extent, blocks), granule), round_up(extent, granule));
}

// --- Packing ---------------------------------------------------------------------
// Packed A block of `rows` x `depth` from op(A) starting at (row0, k0):
// panel p holds rows [p MR, p MR + MR), stored column by column:
//   a_packed[p * MR * depth + k * MR + i] = op(A)[row0 + p MR + i, k0 + k]
// Rows past `rows` are zero.
void pack_a(bool trans_a, const float* A, int64_t lda, int64_t row0, int64_t k0, int64_t rows, int64_t depth,
            float* a_packed) {
  for (int64_t p = 0; p < rows; p += kMR) {
    float* panel = a_packed + p * depth;
    const int64_t valid = std::min<int64_t>(kMR, rows - p);
    if (trans_a) {
      // op(A)[i, k] = A[k, i]: the MR values of one k are contiguous in A.
      for (int64_t k = 0; k < depth; ++k) {
        const float* src = A + (k0 + k) * lda + row0 + p;
        for (int64_t i = 0; i < kMR; ++i) panel[k * kMR + i] = i < valid ? src[i] : 0.0f;
      }
    } else {
      // op(A)[i, k] = A[i, k]: for each k, gather one value from each of
      // the MR rows (MR read streams, one contiguous write). Rows past
      // `valid` point at the last valid row and are replaced by zeros.
      const float* src[kMR];
      for (int64_t i = 0; i < kMR; ++i) src[i] = A + (row0 + p + std::min<int64_t>(i, valid - 1)) * lda + k0;
      for (int64_t k = 0; k < depth; ++k)
        for (int64_t i = 0; i < kMR; ++i) panel[k * kMR + i] = i < valid ? src[i][k] : 0.0f;
    }
  }
}

// An 8 x 8 block transposed in registers: to[k * to_stride + j] = from[j][k]
// for j, k < 8, where from[j] points at 8 consecutive floats. Three rounds
// of shuffles, each interleaving pairs of vectors at a doubling granularity
// (single floats, pairs, then halves): 24 shuffles and 16 vector moves for
// 64 floats, instead of 64 scalar loads and stores.
typedef float v8f __attribute__((vector_size(32), aligned(4), may_alias));
typedef int v8i __attribute__((vector_size(32)));

inline void transpose_8x8(const float* const* from, float* to, int64_t to_stride) {
  v8f v[8], t[8], u[8];
  for (int j = 0; j < 8; ++j) v[j] = *reinterpret_cast<const v8f*>(from[j]);
  // t[2i] = (v[2i][0], v[2i+1][0], v[2i][1], v[2i+1][1] | same for 4, 5), t[2i+1] the same for 2, 3 | 6, 7.
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(v[i], v[i + 1], v8i{0, 8, 1, 9, 4, 12, 5, 13});
    t[i + 1] = __builtin_shuffle(v[i], v[i + 1], v8i{2, 10, 3, 11, 6, 14, 7, 15});
  }
  // u[q] holds element k = q and k = q + 4 of rows 0-3 (u[0..3]) or 4-7 (u[4..7]).
  for (int i = 0; i < 8; i += 4) {
    u[i] = __builtin_shuffle(t[i], t[i + 2], v8i{0, 1, 8, 9, 4, 5, 12, 13});
    u[i + 1] = __builtin_shuffle(t[i], t[i + 2], v8i{2, 3, 10, 11, 6, 7, 14, 15});
    u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], v8i{0, 1, 8, 9, 4, 5, 12, 13});
    u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], v8i{2, 3, 10, 11, 6, 7, 14, 15});
  }
  // Column k: its rows 0-3 from u[k % 4] and rows 4-7 from u[4 + k % 4], low halves for k < 4.
  for (int k = 0; k < 4; ++k) {
    *reinterpret_cast<v8f*>(to + k * to_stride) = __builtin_shuffle(u[k], u[k + 4], v8i{0, 1, 2, 3, 8, 9, 10, 11});
    *reinterpret_cast<v8f*>(to + (k + 4) * to_stride) =
        __builtin_shuffle(u[k], u[k + 4], v8i{4, 5, 6, 7, 12, 13, 14, 15});
  }
}

// Packed B panel of `depth` x `cols` from op(B) starting at (k0, col0):
// panel q holds columns [q NR, q NR + NR), stored row by row:
//   b_packed[q * NR * depth + k * NR + j] = op(B)[k0 + k, col0 + q NR + j]
// Columns past `cols` are zero.
void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t k0, int64_t col0, int64_t depth, int64_t cols,
            float* b_packed) {
  for (int64_t q = 0; q < cols; q += kNR) {
    float* panel = b_packed + q * depth;
    const int64_t valid = std::min<int64_t>(kNR, cols - q);
    if (trans_b) {
      // op(B)[k, j] = B[j, k]: for each k, gather one value from each of
      // the NR rows of the stored B (as in pack_a). A full panel runs a loop
      // without the `j < valid` test, which the compiler does not hoist.
      const float* src[kNR];
      for (int64_t j = 0; j < kNR; ++j) src[j] = B + (col0 + q + std::min<int64_t>(j, valid - 1)) * ldb + k0;
      if (valid == kNR) {  // a full panel: 8 x 8 blocks transposed in registers, then the last k one by one
        int64_t k = 0;
        for (; k + 8 <= depth; k += 8) {
          for (int64_t j = 0; j < kNR; j += 8) {
            const float* rows[8];
            for (int r = 0; r < 8; ++r) rows[r] = src[j + r] + k;
            transpose_8x8(rows, panel + k * kNR + j, kNR);
          }
        }
        for (; k < depth; ++k)
          for (int64_t j = 0; j < kNR; ++j) panel[k * kNR + j] = src[j][k];
      } else {
        for (int64_t k = 0; k < depth; ++k)
          for (int64_t j = 0; j < kNR; ++j) panel[k * kNR + j] = j < valid ? src[j][k] : 0.0f;
      }
    } else {
      // op(B)[k, j] = B[k, j]: the NR values of one k are contiguous in B.
      for (int64_t k = 0; k < depth; ++k) {
        const float* src = B + (k0 + k) * ldb + col0 + q;
        if (valid == kNR) {
          std::memcpy(panel + k * kNR, src, sizeof(float) * kNR);
        } else {
          for (int64_t j = 0; j < kNR; ++j) panel[k * kNR + j] = j < valid ? src[j] : 0.0f;
        }
      }
    }
  }
}

// --- The micro-kernel ----------------------------------------------------------
// C[0:rows, 0:cols] = alpha * (A micro-panel x B micro-panel) + beta * C
// (rows <= MR, cols <= NR; beta == 0: C is not read). `a` is one packed A
// panel (depth x MR), `b` one packed B panel (depth x NR).
void micro_kernel(int64_t depth, const float* __restrict a, const float* __restrict b, float* __restrict c, int64_t ldc,
                  int64_t rows, int64_t cols, float alpha, float beta) {
  // The MR x NR tile of C, in registers: acc[i][v] holds columns
  // [v W, v W + W) of row i (W = kVectorWidth). The loops over i and v have
  // constant trip counts; GCC unrolls them completely and keeps acc in
  // registers.
  vfloat acc[kMR][kNRVectors] = {};
  // Unrolled 4 times: one loop counter update and branch per 48 FMAs, not
  // per 12 (measured 2-10% on the conv shapes). Each accumulator still sees
  // k = 0, 1, 2, ... in order: the same bits.
#pragma GCC unroll 4
  for (int64_t k = 0; k < depth; ++k) {
    vfloat b_row[kNRVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kNRVectors; ++v) b_row[v] = load(b + k * kNR + v * kVectorWidth);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const float a_ik = a[k * kMR + i];  // broadcast on use: vfloat * float
#pragma GCC unroll 4
      for (int v = 0; v < kNRVectors; ++v) acc[i][v] += b_row[v] * a_ik;  // one FMA
    }
  }

  // Write the tile back. A full tile is updated in place; an edge tile goes
  // through a padded scratch tile so that it runs the very same vector code
  // (same rounding) and never touches C outside [rows, cols].
  alignas(64) float scratch[kMR * kNR];
  const bool full = rows == kMR && cols == kNR;
  float* target = full ? c : scratch;
  const int64_t ld_target = full ? ldc : kNR;
  if (!full && beta != 0.0f) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) scratch[i * kNR + j] = c[i * ldc + j];
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < kNRVectors; ++v) {
      float* p = target + i * ld_target + v * kVectorWidth;
      const vfloat scaled = acc[i][v] * alpha;
      // beta == 0: C is write-only (an old NaN must not leak into the result).
      store(p, beta == 0.0f ? scaled : scaled + load(p) * beta);
    }
  }
  if (!full) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) c[i * ldc + j] = scratch[i * kNR + j];
  }
}

// C[0:rows, 0:cols] = alpha * A_block B_panel + beta * C for one packed A
// block (rows x depth) and one packed B panel (depth x cols). The jr loop is
// outside: one B micro-panel stays in L1 while all A micro-panels pass by.
void macro_kernel(int64_t rows, int64_t cols, int64_t depth, const float* a_packed, const float* b_packed, float* C,
                  int64_t ldc, float alpha, float beta) {
  for (int64_t jr = 0; jr < cols; jr += kNR) {
    for (int64_t ir = 0; ir < rows; ir += kMR) {
      micro_kernel(depth, a_packed + ir * depth, b_packed + jr * depth, C + ir * ldc + jr, ldc,
                   std::min<int64_t>(kMR, rows - ir), std::min<int64_t>(kNR, cols - jr), alpha, beta);
    }
  }
}

// --- Per-thread packing buffers ------------------------------------------------
// Each thread (the caller's and OpenMP's worker threads, which live for the
// whole program) keeps its own pair of 64-byte aligned buffers, allocated on
// first use at the maximum block sizes: no allocation per call.
struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<float[], FreeDeleter>;

AlignedBuffer aligned_floats(int64_t count) {
  const std::size_t bytes = static_cast<std::size_t>(round_up(count * static_cast<int64_t>(sizeof(float)), 64));
  float* memory = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (memory == nullptr) throw std::bad_alloc();
  return AlignedBuffer(memory);
}

struct PackBuffers {
  AlignedBuffer a = aligned_floats(round_up(kMCMax, kMR) * kKCMax);
  AlignedBuffer b = aligned_floats(round_up(kNCMax, kNR) * kKCMax);
};

PackBuffers& thread_pack_buffers() {
  thread_local PackBuffers buffers;
  return buffers;
}

// C = beta * C (the K == 0 case: op(A) op(B) is a zero matrix).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

// The classic five loops for the region C[row0:row0+rows, col0:col0+cols]
// of C, on the calling thread.
void gemm_region(bool trans_a, bool trans_b, int64_t row0, int64_t rows, int64_t col0, int64_t cols, int64_t K,
                 float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc, int64_t kc_block) {
  const int64_t mc_block = even_block(rows, kMCMax, kMR), nc_block = even_block(cols, kNCMax, kNR);
  PackBuffers& buffers = thread_pack_buffers();
  for (int64_t jc = col0; jc < col0 + cols; jc += nc_block) {
    const int64_t nc = std::min(nc_block, col0 + cols - jc);
    // The K blocks in increasing order; the first applies beta, the later
    // ones add onto what the earlier ones wrote.
    for (int64_t pc = 0; pc < K; pc += kc_block) {
      const int64_t kc = std::min(kc_block, K - pc);
      pack_b(trans_b, B, ldb, pc, jc, kc, nc, buffers.b.get());  // once, for every ic below
      for (int64_t ic = row0; ic < row0 + rows; ic += mc_block) {
        const int64_t mc = std::min(mc_block, row0 + rows - ic);
        pack_a(trans_a, A, lda, ic, pc, mc, kc, buffers.a.get());
        macro_kernel(mc, nc, kc, buffers.a.get(), buffers.b.get(), C + ic * ldc + jc, ldc, alpha,
                     pc == 0 ? beta : 1.0f);
      }
    }
  }
}

// How many parts to cut M and N into for `threads` threads: the factorisation
// m_parts * n_parts = threads whose regions are closest to square (a square
// region packs the least A and B per flop), among those that leave every
// region at least one register tile. {1, 1} when none does.
void choose_parts(int64_t M, int64_t N, int64_t threads, int64_t& m_parts, int64_t& n_parts) {
  m_parts = n_parts = 1;
  double best = -1.0;
  for (int64_t m = 1; m <= threads; ++m) {
    if (threads % m != 0) continue;
    const int64_t n = threads / m;
    if (ceil_div(M, m) < kMR || ceil_div(N, n) < kNR) continue;
    const double aspect = static_cast<double>(ceil_div(M, m)) / static_cast<double>(ceil_div(N, n));
    const double skew = aspect > 1.0 ? aspect : 1.0 / aspect;  // 1 for a square region
    if (best < 0.0 || skew < best) {
      best = skew;
      m_parts = m;
      n_parts = n;
    }
  }
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(M, N, beta, C, ldc);
    return;
  }

  // K blocks: a fixed function of K alone (this fixes the summation order).
  const int64_t kc_block = even_block(K, kKCMax, 1);

  // One rectangular region of C per thread. How C is cut depends on the
  // thread count; the arithmetic for each element does not.
  const bool parallel = !omp_in_parallel() && 2.0 * M * N * K >= kMinParallelFlops;
  int64_t m_parts = 1, n_parts = 1;
  if (parallel) choose_parts(M, N, omp_get_max_threads(), m_parts, n_parts);
  // Region extents, multiples of the register tile so that only the last
  // region in each direction has edge tiles.
  const int64_t region_rows = round_up(ceil_div(M, m_parts), kMR);
  const int64_t region_cols = round_up(ceil_div(N, n_parts), kNR);
  const int64_t regions = m_parts * n_parts;

#pragma omp parallel for schedule(static, 1) num_threads(regions) if (regions > 1)
  for (int64_t region = 0; region < regions; ++region) {
    const int64_t row0 = (region / n_parts) * region_rows, col0 = (region % n_parts) * region_cols;
    if (row0 >= M || col0 >= N) continue;  // rounding up can leave the last region empty
    gemm_region(trans_a, trans_b, row0, std::min(region_rows, M - row0), col0, std::min(region_cols, N - col0), K,
                alpha, A, lda, B, ldb, beta, C, ldc, kc_block);
  }
}

}  // namespace engine::cpu
