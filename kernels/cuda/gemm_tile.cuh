// The tiled matrix-multiply kernel that our GEMM (gemm.cu) and our
// implicit-GEMM convolutions (conv_implicit_gemm.cu) are built from.
// Device code: include from .cu files only.
//
// The kernel computes C = A B for a [M, K] matrix A and a [K, N] matrix B,
// but it never sees A, B or C as arrays: it asks a PROBLEM object for
// elements. The problem says what A[m][k] and B[k][n] are (a plain matrix
// element for a GEMM; a weight, or a pixel of an image picked out by the
// convolution's geometry, for a convolution) and what to do with each
// finished C[m][n] (scale and store, add a bias, accumulate). The tiling,
// the shared memory and the register blocking are written once, here.
//
// A problem may be a BATCH of independent GEMMs: blockIdx.z selects one,
// problem.slice(z) describes it (the split-K chunks of a weight gradient, the
// stride phases of a transposed convolution). The interface:
//
//   struct Problem {
//     Slice slice(int z) const;          // the z-th GEMM of the batch
//     static constexpr bool kALoadAlongM, kBLoadAlongK;  // load layouts (below)
//   };
//   struct Slice {
//     int M, N;                          // C is [M, N] (blocks outside return at once)
//     int k_begin, k_end;                // the reduction runs over k in [k_begin, k_end)
//     Column column(int n) const;        // per-thread facts about column n, computed once
//     float load_a(int m, int k) const;  // A[m][k]     (only called for m < M, k in range)
//     float load_b(int k, const Column&) const;  // B[k][n] (only for n < N, k in range)
//     void store(int m, int n, float c) const;   // C[m][n] is done (only for m < M, n < N)
//   };
//
// The tiling
// ----------
// Each block of 256 threads computes one kTileM x kTileN = 64 x 128 tile of
// C, starting at row m0 = 64 * blockIdx.y and column n0 = 128 * blockIdx.x.
// It walks the reduction dimension in slices of kTileK = 16:
//
//   for each slice k0, k0 + 16, ...:
//     a_tile[16][64]  <- A[m0 .. m0+64)[k0 .. k0+16)   (stored k-major: transposed)
//     b_tile[16][128] <- B[k0 .. k0+16)[n0 .. n0+128)
//     __syncthreads()
//     every thread: its 4 x 8 outputs += a_tile column x b_tile row, 16 times
//     __syncthreads()
//
// Elements outside A, B (m >= M, k >= k_end, n >= N) are loaded as zeros, so
// ragged edges need no special code in the inner loop; only the final store
// is guarded.
//
// Who loads what (global -> shared). A warp's 32 loads are fast when they
// hit neighbouring addresses (one "coalesced" transaction instead of up to
// 32), so each operand is loaded along whichever index is contiguous in
// memory for the problem; the problem says which (two constants):
//   A along k (kALoadAlongM = false): thread t loads k = t % 16 of the rows
//      m = t / 16 + 16 i (i = 0..3). Right for a row-major [M, K] matrix
//      (a conv weight [C_out, C_in*KH*KW], an output gradient [C_out, pixels]).
//   A along m (kALoadAlongM = true): m = t % 64 of the rows k = t / 64 + 4 i.
//      Right for a transposed A, stored [K, M].
//   B along n (kBLoadAlongK = false): thread t loads column n = t % 128 of the
//      rows k = t / 128 + 2 i (i = 0..7). Neighbouring threads read
//      neighbouring n: neighbouring output pixels, contiguous along an image
//      row. A thread's column never changes, so whatever the problem derives
//      from n (the pixel's image, row and column) is computed once, by column(n).
//   B along k (kBLoadAlongK = true): k = t % 16 of the columns
//      n = t / 16 + 16 j (j = 0..7), each column decoded once. Right for a
//      transposed B stored [N, K], and for a weight gradient, whose k is the
//      output pixel.
// Each layout fills the whole 64 x 16 and 16 x 128 tiles: 4 and 8 elements
// per thread.
//
// Who computes what (shared -> registers -> C). Thread t = 16 ty + tx owns
//   rows    m0 + 4 ty + (0..3)                          (4 rows)
//   columns n0 + 4 tx + (0..3) and n0 + 64 + 4 tx + (0..3) (8 columns)
// and keeps those 32 sums in registers (register blocking: each value read
// from shared memory is used 4 or 8 times). Per step of the 16-long slice it
// reads one float4 of a_tile and two float4 of b_tile, then does 32 FMAs.
// In a warp (tx = 0..15, two values of ty) the b_tile reads cover 256
// consecutive bytes (no bank conflicts) and the a_tile reads are two
// broadcasts. Splitting a thread's columns into two groups of 4, 64 apart, is
// what makes the b_tile reads contiguous across the warp.
//
// Latency hiding: while the block multiplies one slice out of shared memory,
// each thread has already issued the global loads of the NEXT slice into
// registers (a_next, b_next); they are written to shared memory at the top of
// the next iteration. One shared buffer, two barriers per slice.
//
// Every C element's sum runs over k in increasing order, in one register:
// the result does not depend on the launch, the GPU or the timing.
#pragma once
#include <cuda_runtime.h>

namespace engine::cuda::tile {

constexpr int kTileM = 64;     // rows of C per block
constexpr int kTileN = 128;    // columns of C per block
constexpr int kTileK = 16;     // length of one slice of the reduction
constexpr int kThreads = 256;  // threads per block
constexpr int kThreadRows = 4;  // rows of C per thread
constexpr int kThreadCols = 8;  // columns of C per thread: two groups of 4
// Shared-memory row padding: spreads the stores of a column of a tile over
// the 32 banks (at most 2-way conflicts); 4 floats keep rows float4-aligned.
constexpr int kAPad = 4;
constexpr int kBPad = 4;

// The compute layout: 16 x 16 threads, each 4 rows x (4 + 4) columns.
constexpr int kThreadGridCols = kTileN / kThreadCols;  // 16 = tx range
static_assert((kTileM / kThreadRows) * kThreadGridCols == kThreads, "one thread per 4 x 8 block of the tile");
static_assert(kThreadGridCols * 4 * 2 == kTileN, "two groups of 4 columns per thread");
// The load layouts (both fill a tile with the same number of loads).
constexpr int kALoads = kTileM * kTileK / kThreads;  // 4
constexpr int kBLoads = kTileK * kTileN / kThreads;  // 8
static_assert(kThreads % kTileK == 0 && kThreads % kTileM == 0 && kThreads % kTileN == 0, "load layouts");
static_assert(kALoads * kThreads == kTileM * kTileK && kBLoads * kThreads == kTileK * kTileN, "load layouts");

// Grid for a problem whose largest slice is [max_m, max_n], with `slices` of them.
inline dim3 grid_for(int max_m, int max_n, int slices) {
  return dim3(static_cast<unsigned>((max_n + kTileN - 1) / kTileN),
              static_cast<unsigned>((max_m + kTileM - 1) / kTileM), static_cast<unsigned>(slices));
}

template <class Problem>
__global__ void __launch_bounds__(kThreads) tiled_gemm_kernel(const Problem problem, int slice_offset) {
  const auto gemm = problem.slice(static_cast<int>(blockIdx.z) + slice_offset);
  const int m0 = static_cast<int>(blockIdx.y) * kTileM;
  const int n0 = static_cast<int>(blockIdx.x) * kTileN;
  // The grid is sized for the largest slice; a smaller one leaves blocks idle.
  // The whole block leaves together, before any barrier.
  if (m0 >= gemm.M || n0 >= gemm.N) return;

  __shared__ __align__(16) float a_tile[kTileK][kTileM + kAPad];  // a_tile[k][m] = A[m0 + m][k0 + k]
  __shared__ __align__(16) float b_tile[kTileK][kTileN + kBPad];  // b_tile[k][n] = B[k0 + k][n0 + n]

  const int t = static_cast<int>(threadIdx.x);
  // Load layouts (see the top of the file). Element i of a thread's A loads
  // is a_tile[a_k(i)][a_m(i)]; element i of its B loads is b_tile[b_k(i)][b_n(i)].
  constexpr bool kAAlongM = Problem::kALoadAlongM;
  constexpr bool kBAlongK = Problem::kBLoadAlongK;
  auto a_m = [&](int i) { return kAAlongM ? t % kTileM : t / kTileK + i * (kThreads / kTileK); };
  auto a_k = [&](int i) { return kAAlongM ? t / kTileM + i * (kThreads / kTileM) : t % kTileK; };
  auto b_n = [&](int i) { return kBAlongK ? t / kTileK + i * (kThreads / kTileK) : t % kTileN; };
  auto b_k = [&](int i) { return kBAlongK ? t % kTileK : t / kTileN + i * (kThreads / kTileN); };

  // The facts about the thread's B columns, decoded once: 8 columns when
  // loading along k, 1 when loading along n. A column past N is never loaded
  // (n0 < N stands in for it, so that column() sees a valid index).
  using Column = decltype(gemm.column(0));
  constexpr int kColumns = kBAlongK ? kBLoads : 1;
  Column columns[kColumns];
  bool column_valid[kColumns];
#pragma unroll
  for (int j = 0; j < kColumns; ++j) {
    const int n = n0 + b_n(j);
    column_valid[j] = n < gemm.N;
    columns[j] = gemm.column(column_valid[j] ? n : n0);
  }

  float a_next[kALoads];
  float b_next[kBLoads];
  auto load_slice = [&](int k0) {
#pragma unroll
    for (int i = 0; i < kALoads; ++i) {
      const int m = m0 + a_m(i), k = k0 + a_k(i);
      a_next[i] = (m < gemm.M && k < gemm.k_end) ? gemm.load_a(m, k) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kBLoads; ++i) {
      const int j = kBAlongK ? i : 0, k = k0 + b_k(i);
      b_next[i] = (column_valid[j] && k < gemm.k_end) ? gemm.load_b(k, columns[j]) : 0.0f;
    }
  };

  // Compute layout.
  const int ty = t / kThreadGridCols, tx = t % kThreadGridCols;
  float acc[kThreadRows][kThreadCols];
#pragma unroll
  for (int i = 0; i < kThreadRows; ++i)
#pragma unroll
    for (int j = 0; j < kThreadCols; ++j) acc[i][j] = 0.0f;

  if (gemm.k_begin < gemm.k_end) load_slice(gemm.k_begin);
  for (int k0 = gemm.k_begin; k0 < gemm.k_end; k0 += kTileK) {
    // 1. The slice fetched during the previous iteration goes to shared memory.
#pragma unroll
    for (int i = 0; i < kALoads; ++i) a_tile[a_k(i)][a_m(i)] = a_next[i];
#pragma unroll
    for (int i = 0; i < kBLoads; ++i) b_tile[b_k(i)][b_n(i)] = b_next[i];
    __syncthreads();

    // 2. Issue the loads of the next slice; they complete while we compute.
    if (k0 + kTileK < gemm.k_end) load_slice(k0 + kTileK);

    // 3. Multiply the tile: 16 rank-1 updates of the thread's 4 x 8 block.
#pragma unroll
    for (int k = 0; k < kTileK; ++k) {
      const float4 a = *reinterpret_cast<const float4*>(&a_tile[k][ty * 4]);
      const float4 b_low = *reinterpret_cast<const float4*>(&b_tile[k][tx * 4]);
      const float4 b_high = *reinterpret_cast<const float4*>(&b_tile[k][kTileN / 2 + tx * 4]);
      const float a_values[4] = {a.x, a.y, a.z, a.w};
      const float b_values[8] = {b_low.x, b_low.y, b_low.z, b_low.w, b_high.x, b_high.y, b_high.z, b_high.w};
#pragma unroll
      for (int i = 0; i < kThreadRows; ++i)
#pragma unroll
        for (int j = 0; j < kThreadCols; ++j) acc[i][j] = fmaf(a_values[i], b_values[j], acc[i][j]);
    }
    // 4. Everyone is done reading the tile before it is overwritten.
    __syncthreads();
  }

  // Epilogue: hand every finished element to the problem.
#pragma unroll
  for (int i = 0; i < kThreadRows; ++i) {
    const int m = m0 + ty * 4 + i;
    if (m >= gemm.M) continue;
#pragma unroll
    for (int j = 0; j < kThreadCols; ++j) {
      const int n = n0 + (j < 4 ? tx * 4 + j : kTileN / 2 + tx * 4 + (j - 4));
      if (n < gemm.N) gemm.store(m, n, acc[i][j]);
    }
  }
}

// Launches the kernel over `slices` GEMMs whose largest is [max_m, max_n],
// on `stream`. gridDim.z is limited to 65535, so a bigger batch is launched
// in pieces (slice_offset tells the kernel where a piece starts).
template <class Problem>
void launch_tiled_gemm(const Problem& problem, int max_m, int max_n, int slices, cudaStream_t stream) {
  if (max_m <= 0 || max_n <= 0 || slices <= 0) return;
  constexpr int kMaxGridZ = 65535;
  for (int offset = 0; offset < slices; offset += kMaxGridZ) {
    const int count = slices - offset < kMaxGridZ ? slices - offset : kMaxGridZ;
    tiled_gemm_kernel<Problem><<<grid_for(max_m, max_n, count), kThreads, 0, stream>>>(problem, offset);
  }
}

}  // namespace engine::cuda::tile
