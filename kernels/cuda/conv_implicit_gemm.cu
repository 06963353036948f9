// Our implicit-GEMM convolution kernels (see conv_implicit_gemm.h for the
// contract and docs/cuda_conv.md for the walk-through).
//
// A convolution IS a matrix product, once the input is viewed the right way.
// For one convolution (notation of conv_implicit_gemm.h; s = stride, p = padding):
//
//   out[n, co, oh, ow] = sum_{ci, ki, kj} weight[co, ci, ki, kj] * in[n, ci, oh*s - p + ki, ow*s - p + kj]
//
// Name the output pixel P = (n, oh, ow) and the reduction index
// k = (ci, ki, kj) = (ci * KH + ki) * KW + kj. Then
//
//   out[co][P] = sum_k  W[co][k] * X[k][P]       M = C_out, N = batch * OH * OW, K = C_in * KH * KW
//
// with W the weight read as a [C_out, K] row-major matrix (no copy: that IS
// its memory layout) and X[k][P] = in[n, ci, oh*s - p + ki, ow*s - p + kj],
// zero in the padding. im2col (the CPU backend) writes X out as a real
// matrix, K x N floats, nine times the image for a 3x3 kernel. An IMPLICIT
// GEMM never builds it: the GEMM's loader computes each X element's address
// from (k, P) when it fetches the tile into shared memory. The tile engine
// (gemm_tile.cuh) does the multiplication; each problem below only says how
// to find A[m][k] and B[k][n] and where C[m][n] goes.
//
//   ForwardProblem      out  = conv(in, W)            A = W,        B = X (gathered from in), split-K if few tiles
//   BackwardDataProblem in_g = conv^T(out_g, W)       A = W^T taps, B = out_g gathered, one GEMM per stride phase
//   WeightGradProblem   W_g += out_g X^T              A = out_g,    B = X^T (gathered), K = pixels, split into chunks
//
// All index arithmetic is 32-bit (the host functions reject larger shapes):
// 32-bit multiplies are cheaper, and the divisions by the shape's extents
// use FastDivmod (a multiply and a shift).
#include "kernels/cuda/conv_implicit_gemm.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm_tile.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace engine::cuda::implicit_gemm {
namespace {

// The convolution's extents as 32-bit ints (checked by to_device_conv).
struct DeviceConv {
  int batch, in_c, in_h, in_w;
  int out_c, out_h, out_w;
  int kh, kw, stride, pad;
};

constexpr int64_t kIndexLimit = (int64_t{1} << 31) - 1;

DeviceConv to_device_conv(const ConvParams& p, const char* what) {
  const int64_t in_elements = p.batch * p.in_channels * p.in_height * p.in_width;
  const int64_t out_elements = p.batch * p.out_channels * p.out_height * p.out_width;
  const int64_t weight_elements = p.out_channels * p.in_channels * p.kernel_h * p.kernel_w;
  // The furthest input coordinate a receptive field reaches, oh*s - p + ki,
  // and the padded extent must stay in int range too.
  const int64_t reach_h = (p.out_height - 1) * p.stride + p.kernel_h + p.padding;
  const int64_t reach_w = (p.out_width - 1) * p.stride + p.kernel_w + p.padding;
  const int64_t padded = std::max(p.in_height, p.in_width) + 2 * p.padding;
  ENGINE_CHECK(in_elements <= kIndexLimit && out_elements <= kIndexLimit && weight_elements <= kIndexLimit &&
                   reach_h <= kIndexLimit && reach_w <= kIndexLimit && padded <= kIndexLimit,
               what, " (implicit_gemm engine): tensors of ", in_elements, ", ", out_elements, " and ",
               weight_elements, " elements exceed the 32-bit index range of these kernels;",
               " use the cudnn engine (ENGINE_CONV_ENGINE=cudnn) for shapes this large");
  ENGINE_CHECK(p.out_height <= conv2d_output_size(p.in_height, p.kernel_h, p.stride, p.padding) &&
                   p.out_width <= conv2d_output_size(p.in_width, p.kernel_w, p.stride, p.padding),
               what, " (implicit_gemm engine): output ", p.out_height, "x", p.out_width,
               " is larger than the convolution of a ", p.in_height, "x", p.in_width, " input can produce");
  DeviceConv g;
  g.batch = static_cast<int>(p.batch);
  g.in_c = static_cast<int>(p.in_channels);
  g.in_h = static_cast<int>(p.in_height);
  g.in_w = static_cast<int>(p.in_width);
  g.out_c = static_cast<int>(p.out_channels);
  g.out_h = static_cast<int>(p.out_height);
  g.out_w = static_cast<int>(p.out_width);
  g.kh = static_cast<int>(p.kernel_h);
  g.kw = static_cast<int>(p.kernel_w);
  g.stride = static_cast<int>(p.stride);
  g.pad = static_cast<int>(p.padding);
  return g;
}

// Unsigned compare: one instruction for 0 <= i < n.
__device__ __forceinline__ bool in_range(int i, int n) {
  return static_cast<unsigned>(i) < static_cast<unsigned>(n);
}

// ---------------------------------------------------------------------------
// Forward: out[co][P] = sum_k W[co][k] X[k][P]
//   rows m    = output channel co                       M = C_out
//   columns n = output pixel P = (img, oh, ow)          N = batch * OH * OW
//   k         = (ci, ki, kj)                            K = C_in * KH * KW
// A block's 128 columns are 128 consecutive output pixels: mostly one or two
// rows of one image, so the gathered loads of neighbouring threads hit
// neighbouring input pixels (stride 1) or every other one (stride 2).
//
// Small images make few tiles: the 7x7 layers at batch 128 have 98, and the
// 7x7 -> 1x1 convolution (the data gradient of the Unflatten) only 2, each
// with a long K (128 * 49 = 6272). Then K is split into chunks, exactly as
// for the weight gradient below: chunk z (blockIdx.z) writes a partial
// [M, N], and finish_split_forward_kernel adds the partials in chunk order,
// adds the bias, and writes (or accumulates into) out. The chunking depends
// on the shape only; with one chunk the tiles write out directly.
// ---------------------------------------------------------------------------
struct ForwardProblem {
  int M, N, k_begin, k_end;
  int K;                  // C_in * KH * KW: the weight's row length
  int chunk_length;       // split-K (see above); chunks == 1: no split
  int chunks;
  int z;                  // this slice's chunk (set by slice())
  DeviceConv g;
  FastDivmod out_pixels;  // OH * OW:  P -> (img, pixel of the image)
  FastDivmod out_width;   // OW:       pixel -> (oh, ow)
  FastDivmod taps;        // KH * KW:  k -> (ci, tap)
  FastDivmod kernel_w;    // KW:       tap -> (ki, kj)
  const float* in;
  const float* weight;
  const float* bias;
  float* out;
  float* partials;        // [chunks, M, N] when chunks > 1
  bool accumulate;

  // A (the weight) is read along k, B (pixels) along n: both contiguous.
  static constexpr bool kALoadAlongM = false;
  static constexpr bool kBLoadAlongK = false;

  __device__ ForwardProblem slice(int chunk) const {
    ForwardProblem s = *this;
    s.z = chunk;
    s.k_begin = chunk * chunk_length;
    s.k_end = min(K, s.k_begin + chunk_length);
    return s;
  }

  // What a thread needs to know about its output pixel, decoded once.
  struct Column {
    int image_offset;  // of in[img, 0, 0, 0]
    int ih0, iw0;      // top-left corner of the receptive field: oh*s - p, ow*s - p
  };
  __device__ Column column(int n) const {
    int img, pixel, oh, ow;
    out_pixels.divmod(n, img, pixel);
    out_width.divmod(pixel, oh, ow);
    return {img * g.in_c * g.in_h * g.in_w, oh * g.stride - g.pad, ow * g.stride - g.pad};
  }
  // W[co][k] = weight[co, ci, ki, kj]: the weight's own row-major layout.
  __device__ float load_a(int m, int k) const { return weight[m * K + k]; }
  // X[k][P]: one input pixel, or 0 in the padding.
  __device__ float load_b(int k, const Column& c) const {
    int ci, tap, ki, kj;
    taps.divmod(k, ci, tap);
    kernel_w.divmod(tap, ki, kj);
    const int ih = c.ih0 + ki, iw = c.iw0 + kj;
    if (!in_range(ih, g.in_h) || !in_range(iw, g.in_w)) return 0.0f;
    return in[c.image_offset + (ci * g.in_h + ih) * g.in_w + iw];
  }
  __device__ void store(int m, int n, float value) const {
    if (chunks > 1) {
      partials[(z * M + m) * N + n] = value;
      return;
    }
    int img, pixel;
    out_pixels.divmod(n, img, pixel);
    const int index = (img * g.out_c + m) * (g.out_h * g.out_w) + pixel;
    if (bias != nullptr) value += bias[m];
    out[index] = accumulate ? out[index] + value : value;
  }
};

// The end of a split forward: out[img, m, pixel] (+)= sum_z partials[z][m][n] + bias[m]
// for n = img * pixels + pixel, the chunks added in order z = 0, 1, ...
__global__ void finish_split_forward_kernel(int M, int N, int chunks, int pixels, const float* __restrict__ partials,
                                            const float* __restrict__ bias, float* __restrict__ out,
                                            bool accumulate) {
  const int count = M * N;
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < count; e += gridDim.x * blockDim.x) {
    const int m = e / N, n = e % N;
    float value = 0.0f;
    for (int z = 0; z < chunks; ++z) value += partials[z * count + e];
    if (bias != nullptr) value += bias[m];
    const int index = ((n / pixels) * M + m) * pixels + n % pixels;
    out[index] = accumulate ? out[index] + value : value;
  }
}

// ---------------------------------------------------------------------------
// Backward data: in_g[ci, ih, iw] = sum over (co, ki, kj) with
//   oh*s - p + ki = ih and ow*s - p + kj = iw   of   weight[co, ci, ki, kj] * out_g[co, oh, ow].
//
// Written as a gather for one input pixel ih, the taps ki that reach it are
// those with (ih + p - ki) divisible by s, each from row oh = (ih + p - ki)/s.
// With stride 2 and a 4x4 kernel only 2 x 2 of the 16 taps qualify, and
// which ones depends on the PARITY of (ih + p, iw + p). A naive gather over
// all 16 taps would multiply by zero 3/4 of the time (48/49 of the time for
// the UNet's 7x7 stride-7 transposed conv).
//
// So the input pixels are split into s x s PHASES by (ih mod s, iw mod s),
// and each phase is its own dense GEMM (one blockIdx.z each). For the rows
// of phase ph (ih = ph + s t, t = 0, 1, ...), with r = (ph + p) mod s and
// base = (ph + p) div s:
//   the taps are ki = r + s a, a = 0 .. ceil((KH - r)/s) - 1,
//   and tap a reads output row oh = base + t - a.
// (Check: oh*s - p + ki = (base + t - a) s - p + r + s a = (base s + r) - p + s t = ph + s t = ih.)
// Columns likewise. Per phase:
//   rows m    = input channel ci                        M = C_in
//   columns n = (img, t, u): ih = ph + s t, iw = pw + s u   N = batch * rows * cols of the phase
//   k         = (co, a, b)                              K = C_out * taps_h * taps_w
// Only phases ph < min(s, H) have pixels. A phase with no taps (r >= KH:
// kernel smaller than stride) has K = 0 and writes zeros (plus bias).
// Every input pixel is in exactly one phase, so every in_g element is
// written exactly once: no atomics, no second pass.
// ---------------------------------------------------------------------------
struct BackwardDataProblem {
  DeviceConv g;
  int phases_w;  // phase z = ph * phases_w + pw
  const float* out_grad;
  const float* weight;
  const float* bias;
  float* in_grad;
  bool accumulate;

  // B (output-gradient pixels of the phase) is read along n: neighbouring
  // input pixels of a phase read neighbouring output pixels. A (the weight,
  // small and cached) along k.
  static constexpr bool kALoadAlongM = false;
  static constexpr bool kBLoadAlongK = false;

  struct Slice {
    int M, N, k_begin, k_end;
    DeviceConv g;
    int ph, pw;            // first input row/column of the phase
    int r_h, r_w;          // (ph + p) mod s: the first tap
    int base_h, base_w;    // (ph + p) div s: output row of tap 0 for t = 0
    FastDivmod pixels;     // rows * cols of the phase: n -> (img, pixel of the phase)
    FastDivmod cols;       // cols: pixel -> (t, u)
    FastDivmod taps;       // taps_h * taps_w: k -> (co, tap)
    FastDivmod taps_w;     // taps_w: tap -> (a, b)
    const float* out_grad;
    const float* weight;
    const float* bias;
    float* in_grad;
    bool accumulate;

    struct Column {
      int image_offset;  // of out_grad[img, 0, 0, 0]
      int oh0, ow0;      // output row/column of tap (0, 0): base + t, base + u
    };
    __device__ Column column(int n) const {
      int img, pixel, t, u;
      pixels.divmod(n, img, pixel);
      cols.divmod(pixel, t, u);
      return {img * g.out_c * g.out_h * g.out_w, base_h + t, base_w + u};
    }
    // A[ci][(co, a, b)] = weight[co, ci, r_h + s a, r_w + s b]
    __device__ float load_a(int m, int k) const {
      int co, tap, a, b;
      taps.divmod(k, co, tap);
      taps_w.divmod(tap, a, b);
      const int ki = r_h + g.stride * a, kj = r_w + g.stride * b;
      return weight[((co * g.in_c + m) * g.kh + ki) * g.kw + kj];
    }
    // B[(co, a, b)][n] = out_grad[img, co, oh0 - a, ow0 - b], 0 outside the output.
    __device__ float load_b(int k, const Column& c) const {
      int co, tap, a, b;
      taps.divmod(k, co, tap);
      taps_w.divmod(tap, a, b);
      const int oh = c.oh0 - a, ow = c.ow0 - b;
      if (!in_range(oh, g.out_h) || !in_range(ow, g.out_w)) return 0.0f;
      return out_grad[c.image_offset + (co * g.out_h + oh) * g.out_w + ow];
    }
    __device__ void store(int m, int n, float value) const {
      int img, pixel, t, u;
      pixels.divmod(n, img, pixel);
      cols.divmod(pixel, t, u);
      const int ih = ph + g.stride * t, iw = pw + g.stride * u;
      const int index = ((img * g.in_c + m) * g.in_h + ih) * g.in_w + iw;
      if (bias != nullptr) value += bias[m];
      in_grad[index] = accumulate ? in_grad[index] + value : value;
    }
  };

  __device__ Slice slice(int z) const {
    Slice s;
    s.g = g;
    s.ph = z / phases_w;
    s.pw = z % phases_w;
    s.r_h = (s.ph + g.pad) % g.stride;
    s.r_w = (s.pw + g.pad) % g.stride;
    s.base_h = (s.ph + g.pad) / g.stride;
    s.base_w = (s.pw + g.pad) / g.stride;
    const int rows = (g.in_h - s.ph + g.stride - 1) / g.stride;  // ih = ph, ph + s, ... < H
    const int cols = (g.in_w - s.pw + g.stride - 1) / g.stride;
    const int taps_h = s.r_h < g.kh ? (g.kh - s.r_h + g.stride - 1) / g.stride : 0;
    const int taps_w = s.r_w < g.kw ? (g.kw - s.r_w + g.stride - 1) / g.stride : 0;
    s.pixels = FastDivmod(static_cast<uint32_t>(rows * cols));
    s.cols = FastDivmod(static_cast<uint32_t>(cols));
    s.taps = FastDivmod(static_cast<uint32_t>(taps_h * taps_w));
    s.taps_w = FastDivmod(static_cast<uint32_t>(taps_w));
    s.M = g.in_c;
    s.N = g.batch * rows * cols;
    s.k_begin = 0;
    s.k_end = g.out_c * taps_h * taps_w;
    s.out_grad = out_grad;
    s.weight = weight;
    s.bias = bias;
    s.in_grad = in_grad;
    s.accumulate = accumulate;
    return s;
  }
};

// ---------------------------------------------------------------------------
// Weight gradient: W_g[co][(ci, ki, kj)] += sum_P out_g[co][P] X[(ci, ki, kj)][P]
//   rows m    = output channel co                       M = C_out
//   columns n = (ci, ki, kj)                            N = C_in * KH * KW
//   k         = output pixel P = (img, oh, ow)          K = batch * OH * OW
// K is long (100352 at batch 128 and 28x28) and M x N small (64 x 576), so
// the sum over K is split into `chunks` consecutive ranges, one per
// blockIdx.z, which gives enough blocks to fill the GPU. Chunk z writes its
// own partial [M, N]; add_partials_kernel then adds the partials in order
// z = 0, 1, ... onto W_g. Chunk boundaries depend on the shape only, so the
// bits do too. With one chunk the blocks add straight onto W_g.
// ---------------------------------------------------------------------------
struct WeightGradProblem {
  int M, N, k_begin, k_end;
  DeviceConv g;
  int chunk_length;        // in pixels, a multiple of the tile's K
  int z;                   // this slice's chunk (set by slice())
  int chunks;
  FastDivmod out_pixels;   // OH * OW
  FastDivmod out_width;    // OW
  FastDivmod taps;         // KH * KW
  FastDivmod kernel_w;     // KW
  const float* in;
  const float* out_grad;
  float* weight_grad;      // [M, N]
  float* partials;         // [chunks, M, N] when chunks > 1

  // Both operands are contiguous along k, the output pixel: A = out_grad
  // [C_out, pixels] row by row, B = the input pixels under one tap.
  static constexpr bool kALoadAlongM = false;
  static constexpr bool kBLoadAlongK = true;

  __device__ WeightGradProblem slice(int chunk) const {
    WeightGradProblem s = *this;
    s.z = chunk;
    s.k_begin = chunk * chunk_length;
    s.k_end = min(k_end, s.k_begin + chunk_length);
    return s;
  }

  struct Column {
    int channel_offset;  // of in[0, ci, 0, 0] within an image
    int ki, kj;
  };
  __device__ Column column(int n) const {
    int ci, tap, ki, kj;
    taps.divmod(n, ci, tap);
    kernel_w.divmod(tap, ki, kj);
    return {ci * g.in_h * g.in_w, ki, kj};
  }
  // A[co][P] = out_grad[img, co, oh, ow]
  __device__ float load_a(int m, int k) const {
    int img, pixel;
    out_pixels.divmod(k, img, pixel);
    return out_grad[(img * g.out_c + m) * (g.out_h * g.out_w) + pixel];
  }
  // B[P][(ci, ki, kj)] = in[img, ci, oh*s - p + ki, ow*s - p + kj], 0 in the padding.
  __device__ float load_b(int k, const Column& c) const {
    int img, pixel, oh, ow;
    out_pixels.divmod(k, img, pixel);
    out_width.divmod(pixel, oh, ow);
    const int ih = oh * g.stride - g.pad + c.ki, iw = ow * g.stride - g.pad + c.kj;
    if (!in_range(ih, g.in_h) || !in_range(iw, g.in_w)) return 0.0f;
    return in[img * g.in_c * g.in_h * g.in_w + c.channel_offset + ih * g.in_w + iw];
  }
  __device__ void store(int m, int n, float value) const {
    if (chunks == 1)
      weight_grad[m * N + n] += value;
    else
      partials[(z * M + m) * N + n] = value;
  }
};

// weight_grad[i] += partials[0][i] + partials[1][i] + ... (in this order).
__global__ void add_partials_kernel(int count, int chunks, const float* __restrict__ partials,
                                    float* __restrict__ weight_grad) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
    float sum = 0.0f;
    for (int z = 0; z < chunks; ++z) sum += partials[z * count + i];
    weight_grad[i] += sum;
  }
}

// bias_grad[c] += sum over (n, i) of grad[n, c, i]: block c. Thread t sums
// i = t, t + 256, ... of every image in order (in double), then the block
// adds the 256 thread sums by a fixed binary tree in shared memory.
constexpr int kBiasThreads = 256;

__global__ void __launch_bounds__(kBiasThreads)
    channel_sum_kernel(int64_t batch, int64_t channels, int64_t pixels, const float* __restrict__ grad,
                       float* __restrict__ bias_grad) {
  const int64_t c = blockIdx.x;
  double sum = 0.0;
  for (int64_t n = 0; n < batch; ++n) {
    const float* plane = grad + (n * channels + c) * pixels;
    for (int64_t i = threadIdx.x; i < pixels; i += kBiasThreads) sum += plane[i];
  }
  __shared__ double partial[kBiasThreads];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int half = kBiasThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) bias_grad[c] += static_cast<float>(partial[0]);
}

// Scratch memory from the engine's allocator, returned at scope exit. Safe
// while queued kernels still use it: the allocator hands a freed block only
// to work queued later on the same stream.
class DeviceScratch {
 public:
  explicit DeviceScratch(std::size_t bytes) {
    CUDA_CHECK(cudaGetDevice(&device_));
    ptr_ = raw_malloc(bytes, device_);
  }
  ~DeviceScratch() { raw_free(ptr_, device_); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  float* floats() const { return static_cast<float*>(ptr_); }

 private:
  int device_ = 0;
  void* ptr_ = nullptr;
};

// Split-K parameters: aim for about kTargetBlocks blocks (a constant, not the
// GPU's SM count, so that the partition, and the bits, are the same on every
// GPU), with chunks of at least kMinChunkLength pixels and at most
// kMaxPartialFloats floats of partials.
constexpr int64_t kTargetBlocks = 512;
constexpr int64_t kMinChunkLength = 256;
constexpr int64_t kMaxPartialFloats = int64_t{1} << 26;  // 256 MiB

struct SplitK {
  int chunks;
  int chunk_length;
};

SplitK split_k(int64_t m, int64_t n, int64_t k) {
  const int64_t tiles = ((m + tile::kTileM - 1) / tile::kTileM) * ((n + tile::kTileN - 1) / tile::kTileN);
  int64_t chunks = (kTargetBlocks + tiles - 1) / tiles;
  chunks = std::min(chunks, std::max<int64_t>(1, k / kMinChunkLength));
  chunks = std::min(chunks, std::max<int64_t>(1, kMaxPartialFloats / std::max<int64_t>(1, m * n)));
  chunks = std::max<int64_t>(1, chunks);
  // Equal chunks, each a whole number of tile slices; recount after rounding.
  int64_t length = (k + chunks - 1) / chunks;
  length = (length + tile::kTileK - 1) / tile::kTileK * tile::kTileK;
  length = std::max<int64_t>(length, tile::kTileK);
  chunks = std::max<int64_t>(1, (k + length - 1) / length);
  return {static_cast<int>(chunks), static_cast<int>(length)};
}

}  // namespace

int weight_grad_chunks(int64_t m, int64_t n, int64_t k) { return split_k(m, n, k).chunks; }

void conv_forward(const ConvParams& conv, const float* in, const float* weight, const float* bias, float* out,
                  bool accumulate) {
  const DeviceConv g = to_device_conv(conv, "conv forward");
  if (g.batch == 0) return;
  const int M = g.out_c, N = g.batch * g.out_h * g.out_w, K = g.in_c * g.kh * g.kw;
  const SplitK split = split_k(M, N, K);
  ForwardProblem problem;
  problem.M = M;
  problem.N = N;
  problem.k_begin = 0;
  problem.k_end = K;
  problem.K = K;
  problem.chunk_length = split.chunk_length;
  problem.chunks = split.chunks;
  problem.z = 0;
  problem.g = g;
  problem.out_pixels = FastDivmod(static_cast<uint32_t>(g.out_h * g.out_w));
  problem.out_width = FastDivmod(static_cast<uint32_t>(g.out_w));
  problem.taps = FastDivmod(static_cast<uint32_t>(g.kh * g.kw));
  problem.kernel_w = FastDivmod(static_cast<uint32_t>(g.kw));
  problem.in = in;
  problem.weight = weight;
  problem.bias = bias;
  problem.out = out;
  problem.partials = nullptr;
  problem.accumulate = accumulate;
  cudaStream_t stream = current_stream();
  if (split.chunks == 1) {
    tile::launch_tiled_gemm(problem, M, N, 1, stream);
    CUDA_CHECK_LAUNCH();
    return;
  }
  const int count = M * N;
  DeviceScratch partials(static_cast<std::size_t>(split.chunks) * static_cast<std::size_t>(count) * sizeof(float));
  problem.partials = partials.floats();
  tile::launch_tiled_gemm(problem, M, N, split.chunks, stream);
  CUDA_CHECK_LAUNCH();
  const int threads = 256;
  const int blocks = std::min((count + threads - 1) / threads, 65535);
  finish_split_forward_kernel<<<blocks, threads, 0, stream>>>(M, N, split.chunks, g.out_h * g.out_w,
                                                              partials.floats(), bias, out, accumulate);
  CUDA_CHECK_LAUNCH();
}

void conv_backward_data(const ConvParams& conv, const float* out_grad, const float* weight, const float* bias,
                        float* in_grad, bool accumulate) {
  const DeviceConv g = to_device_conv(conv, "conv backward data");
  if (g.batch == 0) return;
  BackwardDataProblem problem;
  problem.g = g;
  const int phases_h = std::min(g.stride, g.in_h), phases_w = std::min(g.stride, g.in_w);
  problem.phases_w = phases_w;
  problem.out_grad = out_grad;
  problem.weight = weight;
  problem.bias = bias;
  problem.in_grad = in_grad;
  problem.accumulate = accumulate;
  // Phase (0, 0) has the most pixels: ceil(H / s) x ceil(W / s) per image.
  const int64_t max_n = int64_t{g.batch} * ((g.in_h + g.stride - 1) / g.stride) * ((g.in_w + g.stride - 1) / g.stride);
  tile::launch_tiled_gemm(problem, g.in_c, static_cast<int>(max_n), phases_h * phases_w, current_stream());
  CUDA_CHECK_LAUNCH();
}

void conv_backward_weight(const ConvParams& conv, const float* in, const float* out_grad, float* weight_grad) {
  const DeviceConv g = to_device_conv(conv, "conv backward weight");
  if (g.batch == 0) return;
  const int M = g.out_c, N = g.in_c * g.kh * g.kw, K = g.batch * g.out_h * g.out_w;
  const SplitK split = split_k(M, N, K);
  WeightGradProblem problem;
  problem.M = M;
  problem.N = N;
  problem.k_begin = 0;
  problem.k_end = K;
  problem.g = g;
  problem.chunk_length = split.chunk_length;
  problem.z = 0;
  problem.chunks = split.chunks;
  problem.out_pixels = FastDivmod(static_cast<uint32_t>(g.out_h * g.out_w));
  problem.out_width = FastDivmod(static_cast<uint32_t>(g.out_w));
  problem.taps = FastDivmod(static_cast<uint32_t>(g.kh * g.kw));
  problem.kernel_w = FastDivmod(static_cast<uint32_t>(g.kw));
  problem.in = in;
  problem.out_grad = out_grad;
  problem.weight_grad = weight_grad;
  problem.partials = nullptr;
  cudaStream_t stream = current_stream();
  if (split.chunks == 1) {
    tile::launch_tiled_gemm(problem, M, N, 1, stream);
    CUDA_CHECK_LAUNCH();
    return;
  }
  const int count = M * N;
  DeviceScratch partials(static_cast<std::size_t>(split.chunks) * static_cast<std::size_t>(count) * sizeof(float));
  problem.partials = partials.floats();
  tile::launch_tiled_gemm(problem, M, N, split.chunks, stream);
  CUDA_CHECK_LAUNCH();
  const int threads = 256;
  const int blocks = std::min((count + threads - 1) / threads, 65535);
  add_partials_kernel<<<blocks, threads, 0, stream>>>(count, split.chunks, partials.floats(), weight_grad);
  CUDA_CHECK_LAUNCH();
}

void conv_backward_bias(int64_t batch, int64_t channels, int64_t pixels, const float* grad, float* bias_grad) {
  if (channels == 0 || batch == 0 || pixels == 0) return;
  ENGINE_CHECK(channels <= kIndexLimit, "conv backward bias: ", channels, " channels exceed the grid limit");
  channel_sum_kernel<<<static_cast<unsigned>(channels), kBiasThreads, 0, current_stream()>>>(batch, channels, pixels,
                                                                                             grad, bias_grad);
  CUDA_CHECK_LAUNCH();
}

}  // namespace engine::cuda::implicit_gemm
