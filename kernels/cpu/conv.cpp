// conv2d and conv_transpose2d, forward and backward, as im2col + GEMM.
// The math and the shapes of every argument are in conv.h; the derivation in
// docs/conv.md. Per image n (x[n] and y[n] viewed as matrices):
//
//   conv2d           K = C_in KH KW,  P = OH OW,  columns = im2col(x[n]) [K, P]
//     forward        y[n] [C_out, P]       = weight [C_out, K] columns
//     backward       grad_weight [C_out, K] += grad_y[n] columns^T
//                    grad_x[n]             += col2im(weight^T grad_y[n])
//
//   conv_transpose2d K = C_out KH KW, P = H W (x's positions), the image is y
//     forward        columns [K, P]        = weight^T [K, C_in] x[n] [C_in, P]
//                    y[n]                  = col2im(columns)
//     backward       columns               = im2col(grad_y[n])
//                    grad_x[n] [C_in, P]  += weight [C_in, K] columns
//                    grad_weight [C_in, K] += x[n] columns^T
//
// The code below does exactly this for a group of B consecutive images at
// once (BatchPlan): their matrices stand side by side, [K, B P] instead of
// [K, P], so that each GEMM is wide enough to run fast.
#include "kernels/cpu/conv.h"

#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace engine::cpu {
namespace {

// The output positions o in [0, out_size) whose input coordinate
// o*stride - padding + k lies inside [0, in_size) form one contiguous range
// [begin, end): before it the kernel tap k reads the top/left padding, after
// it the bottom/right padding.
struct Range {
  int64_t begin;
  int64_t end;
};

int64_t ceil_div_nonnegative(int64_t a, int64_t b) { return (a + b - 1) / b; }

Range valid_outputs(int64_t in_size, int64_t out_size, int64_t k, int64_t stride, int64_t padding) {
  // o*stride - padding + k >= 0        <=>  o >= ceil((padding - k) / stride)
  // o*stride - padding + k <= in - 1   <=>  o <  ceil((in + padding - k) / stride)
  const int64_t first = padding - k > 0 ? ceil_div_nonnegative(padding - k, stride) : 0;
  const int64_t past = in_size + padding - k > 0 ? ceil_div_nonnegative(in_size + padding - k, stride) : 0;
  const int64_t begin = std::min(first, out_size);
  const int64_t end = std::clamp(past, begin, out_size);
  return {begin, end};
}

// conv2d: the image is x[n], the columns run over y's positions.
ImageGeometry conv2d_geometry(const ConvParams& p) {
  return {p.in_channels, p.in_height, p.in_width, p.kernel_h, p.kernel_w,
          p.stride,      p.padding,   p.out_height, p.out_width};
}

// conv_transpose2d: the image is y[n], the columns run over x's positions
// (x is what a conv2d of y would produce).
ImageGeometry conv_transpose2d_geometry(const ConvParams& p) {
  return {p.out_channels, p.out_height, p.out_width, p.kernel_h, p.kernel_w,
          p.stride,       p.padding,    p.in_height, p.in_width};
}

// to[i] = from[i * stride] for i < n. The rows im2col copies are short (7
// to 28 floats at the UNet's sizes): an inline vector loop, not a call to
// memmove/memset, which GCC would otherwise substitute for the plain loop
// and which costs more than the copy at these lengths.
typedef float vfloat8 __attribute__((vector_size(32), aligned(4), may_alias));

void copy_row(const float* from, int64_t stride, int64_t n, float* to) {
  int64_t i = 0;
  if (stride == 1)
    for (; i + 8 <= n; i += 8) *reinterpret_cast<vfloat8*>(to + i) = *reinterpret_cast<const vfloat8*>(from + i);
#pragma GCC unroll 1
  for (; i < n; ++i) to[i] = from[i * stride];
}

void zero_row(int64_t n, float* to) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) *reinterpret_cast<vfloat8*>(to + i) = vfloat8{};
#pragma GCC unroll 1
  for (; i < n; ++i) to[i] = 0.0f;
}

int64_t column_rows(const ImageGeometry& g) { return g.channels * g.kernel_h * g.kernel_w; }
int64_t column_cols(const ImageGeometry& g) { return g.out_height * g.out_width; }

// Runs body(item, buffer) for item in [0, count), in parallel over items with
// a static schedule; `buffer` points to `buffer_size` floats owned by the
// calling thread (allocated here, before the parallel region, so that an
// allocation failure throws normally). With a single item no parallel region
// is opened at all, so the GEMMs inside the body may use every thread.
template <typename Body>
void parallel_for_with_buffer(int64_t count, int64_t buffer_size, Body body) {
  if (count <= 0) return;
  const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), count));
  // Scratch only: left uninitialised (zero-filling megabytes per call cost more than small GEMMs).
  const std::unique_ptr<float[]> buffers = std::make_unique_for_overwrite<float[]>(
      static_cast<std::size_t>(threads * buffer_size));
  if (threads == 1) {
    for (int64_t item = 0; item < count; ++item) body(item, buffers.get());
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    float* buffer = buffers.get() + omp_get_thread_num() * buffer_size;
#pragma omp for schedule(static)
    for (int64_t item = 0; item < count; ++item) body(item, buffer);
  }
}

// How the batch is cut up, from the shapes alone (never the thread count):
//  * groups of `group_size` consecutive images (the last one may be short)
//    share one GEMM: enough images that the group's column matrix
//    [K, images * positions] has at least kMinGemmColumns columns;
//  * for the weight and bias gradients, at most kMaxChunks chunks of
//    consecutive groups, chunk c holding groups [c*G/chunks, (c+1)*G/chunks).
//    Each chunk sums its images in order into its own weight-sized partial;
//    the partials are added in chunk order. 16 chunks keep up to 16 threads
//    busy.
struct BatchPlan {
  static constexpr int64_t kMinGemmColumns = 256;
  static constexpr int64_t kMaxChunks = 16;
  int64_t batch;
  int64_t group_size;
  int64_t groups;
  int64_t chunks;

  BatchPlan(int64_t batch_size, int64_t positions_per_image) : batch(batch_size) {
    group_size = std::clamp<int64_t>(ceil_div_nonnegative(kMinGemmColumns, positions_per_image), 1,
                                     std::max<int64_t>(batch, 1));
    groups = ceil_div_nonnegative(batch, group_size);
    chunks = std::min(groups, kMaxChunks);
  }
  int64_t first_image(int64_t group) const { return group * group_size; }
  int64_t images_in(int64_t group) const { return std::min(batch - first_image(group), group_size); }
  int64_t first_group(int64_t chunk) const { return chunk * groups / chunks; }
  int64_t end_group(int64_t chunk) const { return (chunk + 1) * groups / chunks; }
};

// A group of `count` consecutive images, each a [channels, positions] matrix,
// as one [channels, count * positions] matrix (image i in columns
// [i * positions, (i + 1) * positions)). A single image already is that
// matrix: it is returned as is, and nothing is copied.
const float* images_as_matrix(const float* images, int64_t count, int64_t channels, int64_t positions,
                              float* buffer) {
  if (count == 1) return images;
  const int64_t width = count * positions;
  for (int64_t i = 0; i < count; ++i)
    for (int64_t c = 0; c < channels; ++c)
      std::copy_n(images + (i * channels + c) * positions, positions, buffer + c * width + i * positions);
  return buffer;
}

// The reverse: images[i][c, :] (+)= matrix[c, i * positions : (i + 1) * positions].
void matrix_to_images(const float* matrix, int64_t count, int64_t channels, int64_t positions, bool accumulate,
                      float* images) {
  const int64_t width = count * positions;
  for (int64_t i = 0; i < count; ++i)
    for (int64_t c = 0; c < channels; ++c) {
      const float* from = matrix + c * width + i * positions;
      float* to = images + (i * channels + c) * positions;
      if (accumulate)
        for (int64_t j = 0; j < positions; ++j) to[j] += from[j];
      else
        std::copy_n(from, positions, to);
    }
}

// plane[c, :] = bias[c] for c < channels, plane [channels, size].
void fill_with_bias(const float* bias, int64_t channels, int64_t size, float* plane) {
  for (int64_t c = 0; c < channels; ++c) std::fill_n(plane + c * size, size, bias ? bias[c] : 0.0f);
}

// plane[c, :] += bias[c].
void add_bias(const float* bias, int64_t channels, int64_t size, float* plane) {
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < size; ++i) plane[c * size + i] += bias[c];
}

// sums[c] += sum_i plane[c, i], in double.
void add_channel_sums(const float* plane, int64_t channels, int64_t size, double* sums) {
  for (int64_t c = 0; c < channels; ++c) {
    double s = 0.0;
    for (int64_t i = 0; i < size; ++i) s += plane[c * size + i];
    sums[c] += s;
  }
}

// grad_weight[i] += sum over chunks (in order) of partials[chunk, i];
// grad_bias likewise. Parallel over i: each element has one fixed order.
void add_chunk_partials(int64_t chunks, const std::vector<float>& weight_partials, int64_t weight_size,
                        float* grad_weight, const std::vector<double>& bias_partials, int64_t bias_size,
                        float* grad_bias) {
  if (grad_weight) {
#pragma omp parallel for schedule(static) if (weight_size > 65536)
    for (int64_t i = 0; i < weight_size; ++i) {
      double s = 0.0;
      for (int64_t c = 0; c < chunks; ++c) s += weight_partials[static_cast<std::size_t>(c * weight_size + i)];
      grad_weight[i] += static_cast<float>(s);
    }
  }
  if (grad_bias) {
    for (int64_t i = 0; i < bias_size; ++i) {
      double s = 0.0;
      for (int64_t c = 0; c < chunks; ++c) s += bias_partials[static_cast<std::size_t>(c * bias_size + i)];
      grad_bias[i] += static_cast<float>(s);
    }
  }
}

}  // namespace

// --- im2col and its adjoint ----------------------------------------------------

namespace {

// One row of the column matrix, tap (c, ki, kj), for a stride-1 convolution
// whose output rows are as wide as the input's (W = OW: "same" padding, the
// UNet's 3x3 / 1 / 1). Output position o = oh W + ow reads
//     plane[(oh + ki - p) W + (ow + kj - p)] = plane[o + offset],  offset = (ki - p) W + (kj - p),
// the same offset for every position: the row is the image plane shifted,
// so all output rows whose input row exists are one contiguous copy. Only
// the entries whose input column falls outside the image (ow + kj - p < 0 or
// >= W) read a neighbouring row's pixel in that copy (or, at the very
// start and end, would read outside the plane and are not copied); they are
// then set to zero, one or two per output row.
void im2col_row_same_width(const ImageGeometry& g, const float* plane, int64_t ki, int64_t kj, float* row) {
  const int64_t W = g.width;
  const Range rows = valid_outputs(g.height, g.out_height, ki, 1, g.padding);
  const Range cols = valid_outputs(g.width, g.out_width, kj, 1, g.padding);
  const int64_t offset = (ki - g.padding) * W + (kj - g.padding);
  // Copy the entries [first, last): those of the valid rows whose source lies inside the plane.
  const int64_t first = std::clamp(-offset, rows.begin * W, rows.end * W);
  const int64_t last = std::clamp(g.height * W - offset, first, rows.end * W);
  std::fill(row, row + first, 0.0f);  // rows above the image (and clipped border entries)
  if (last > first) std::copy(plane + first + offset, plane + last + offset, row + first);
  std::fill(row + last, row + g.out_height * W, 0.0f);  // rows below the image (and clipped border entries)
  for (int64_t oh = rows.begin; oh < rows.end; ++oh) {  // the border columns
    for (int64_t ow = 0; ow < cols.begin; ++ow) row[oh * W + ow] = 0.0f;
    for (int64_t ow = cols.end; ow < W; ++ow) row[oh * W + ow] = 0.0f;
  }
}

}  // namespace

void im2col(const ImageGeometry& g, const float* image, float* columns, int64_t columns_stride) {
  const bool same_width_stride_1 = g.stride == 1 && g.width == g.out_width;
  for (int64_t c = 0; c < g.channels; ++c) {
    const float* plane = image + c * g.height * g.width;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        // One row of the column matrix: tap (c, ki, kj) at every output position.
        float* row = columns + ((c * g.kernel_h + ki) * g.kernel_w + kj) * columns_stride;
        if (same_width_stride_1) {
          im2col_row_same_width(g, plane, ki, kj, row);
          continue;
        }
        const Range cols = valid_outputs(g.width, g.out_width, kj, g.stride, g.padding);
        const int64_t shift = kj - g.padding;  // tap kj of output column ow reads iw = ow * stride + shift
        for (int64_t oh = 0; oh < g.out_height; ++oh) {
          float* out = row + oh * g.out_width;
          const int64_t ih = oh * g.stride - g.padding + ki;
          if (ih < 0 || ih >= g.height) {  // the whole output row reads padding
            zero_row(g.out_width, out);
            continue;
          }
          const float* in = plane + ih * g.width;
          zero_row(cols.begin, out);
          copy_row(in + cols.begin * g.stride + shift, g.stride, cols.end - cols.begin, out + cols.begin);
          zero_row(g.out_width - cols.end, out + cols.end);
        }
      }
    }
  }
}

void col2im_add(const ImageGeometry& g, const float* columns, int64_t columns_stride, float* image) {
  // The same index map as im2col, with the copy reversed into an add: every
  // column entry goes back to the pixel it was read from. A pixel covered by
  // several receptive fields receives one contribution from each, always in
  // the same order (rows, then positions), so the sum is deterministic.
  for (int64_t c = 0; c < g.channels; ++c) {
    float* plane = image + c * g.height * g.width;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const float* row = columns + ((c * g.kernel_h + ki) * g.kernel_w + kj) * columns_stride;
        const Range cols = valid_outputs(g.width, g.out_width, kj, g.stride, g.padding);
        const int64_t shift = kj - g.padding;
        for (int64_t oh = 0; oh < g.out_height; ++oh) {
          const int64_t ih = oh * g.stride - g.padding + ki;
          if (ih < 0 || ih >= g.height) continue;  // fell into the padding: dropped
          const float* in = row + oh * g.out_width;
          float* out = plane + ih * g.width;
          if (g.stride == 1) {  // unit stride: a plain vectorisable add of two rows
            for (int64_t ow = cols.begin; ow < cols.end; ++ow) out[ow + shift] += in[ow];
          } else {
            for (int64_t ow = cols.begin; ow < cols.end; ++ow) out[ow * g.stride + shift] += in[ow];
          }
        }
      }
    }
  }
}

// --- conv2d -----------------------------------------------------------------------
// Per group of B images (P = OH OW positions each, K = C_in KH KW):
//   columns [K, B P]        = im2col of each image, side by side
//   out     [C_out, B P]    = weight [C_out, K] columns;  out[n] (+)= its block
// This loop serves the forward pass and, for stride 1, the data gradient.
namespace {

// out[n] = weight * image[n] (accumulate: out[n] += ...) for the `batch`
// images of geometry g, weight [out_channels, g.channels KH KW] and out[n]
// [out_channels, g.out_height g.out_width].
void convolve_images(const ImageGeometry& g, int64_t batch, int64_t out_channels, const float* images,
                     const float* weight, bool accumulate, float* out) {
  const int64_t K = column_rows(g), P = column_cols(g);
  const int64_t image_size = g.channels * g.height * g.width;
  const int64_t out_size = out_channels * P;
  const BatchPlan plan(batch, P);
  const int64_t width = plan.group_size * P;  // columns of a full group
  parallel_for_with_buffer(plan.groups, (K + out_channels) * width, [&](int64_t group, float* buffer) {
    const int64_t n0 = plan.first_image(group), count = plan.images_in(group), cols = count * P;
    float* columns = buffer;              // [K, cols]
    float* product = buffer + K * width;  // [out_channels, cols]
    for (int64_t i = 0; i < count; ++i) im2col(g, images + (n0 + i) * image_size, columns + i * P, cols);
    if (count == 1) {  // a single image's product is out[n] itself: the GEMM writes (or adds) there directly
      gemm(false, false, out_channels, cols, K, 1.0f, weight, K, columns, cols, accumulate ? 1.0f : 0.0f,
           out + n0 * out_size, cols);
    } else {
      gemm(false, false, out_channels, cols, K, 1.0f, weight, K, columns, cols, 0.0f, product, cols);
      matrix_to_images(product, count, out_channels, P, accumulate, out + n0 * out_size);
    }
  });
}

// For stride 1 the data gradient of a convolution is itself a convolution:
//   grad_x[ci, ih, iw] = sum_{co, ki, kj} grad_y[co, ih + p - ki, iw + p - kj] weight[co, ci, ki, kj]
// and substituting a = KH-1-ki, b = KW-1-kj turns it into
//   sum_{co, a, b} grad_y[co, ih - (KH-1-p) + a, iw - (KW-1-p) + b] flipped[ci, co, a, b]
// with flipped[ci, co, a, b] = weight[co, ci, KH-1-a, KW-1-b]: a conv2d of
// grad_y, padding KH-1-p, stride 1, whose output has x's size. Computed that
// way it is one deep GEMM (K = C_out KH KW) per image instead of a shallow
// one (K = C_out) followed by col2im's scatter-add.
bool data_gradient_is_a_convolution(const ConvParams& p) {
  return p.stride == 1 && p.kernel_h == p.kernel_w && p.padding <= p.kernel_h - 1;
}

std::vector<float> flipped_transposed_weight(const ConvParams& p, const float* weight) {
  const int64_t kh = p.kernel_h, kw = p.kernel_w;
  std::vector<float> flipped(static_cast<std::size_t>(p.in_channels * p.out_channels * kh * kw));
  for (int64_t co = 0; co < p.out_channels; ++co)
    for (int64_t ci = 0; ci < p.in_channels; ++ci)
      for (int64_t a = 0; a < kh; ++a)
        for (int64_t b = 0; b < kw; ++b)
          flipped[static_cast<std::size_t>(((ci * p.out_channels + co) * kh + a) * kw + b)] =
              weight[((co * p.in_channels + ci) * kh + (kh - 1 - a)) * kw + (kw - 1 - b)];
  return flipped;
}

}  // namespace

void conv2d_forward(const ConvParams& p, const float* x, const float* weight, const float* bias, float* y) {
  convolve_images(conv2d_geometry(p), p.batch, p.out_channels, x, weight, /*accumulate=*/false, y);
  if (bias) {
    const int64_t P = p.out_height * p.out_width;
    for (int64_t n = 0; n < p.batch; ++n) add_bias(bias, p.out_channels, P, y + n * p.out_channels * P);
  }
}

// Per group: G = grad_y of the group as [C_out, B P], columns = im2col(x) [K, B P];
//   partial grad_weight [C_out, K] += G columns^T
//   grad_columns [K, B P] = weight^T G, then col2im into each grad_x[n]
void conv2d_backward(const ConvParams& p, const float* x, const float* weight, const float* grad_y, float* grad_x,
                     float* grad_weight, float* grad_bias) {
  const ImageGeometry g = conv2d_geometry(p);
  const int64_t K = column_rows(g), P = column_cols(g);
  const int64_t x_image = p.in_channels * p.in_height * p.in_width;
  const int64_t y_image = p.out_channels * P;
  const int64_t weight_size = p.out_channels * K;
  const BatchPlan plan(p.batch, P);
  const int64_t width = plan.group_size * P;
  std::vector<float> weight_partials(grad_weight ? static_cast<std::size_t>(plan.chunks * weight_size) : 0, 0.0f);
  std::vector<double> bias_partials(grad_bias ? static_cast<std::size_t>(plan.chunks * p.out_channels) : 0, 0.0);
  // The data gradient: a convolution of grad_y for stride 1 (see above),
  // else inside the loop below as col2im(weight^T grad_y).
  const bool grad_x_by_convolution = grad_x && data_gradient_is_a_convolution(p);
  if (grad_x_by_convolution) {
    const std::vector<float> flipped = flipped_transposed_weight(p, weight);
    const ImageGeometry of_grad_y{p.out_channels, p.out_height, p.out_width, p.kernel_h, p.kernel_w,
                                  1,              p.kernel_h - 1 - p.padding, p.in_height, p.in_width};
    convolve_images(of_grad_y, p.batch, p.in_channels, grad_y, flipped.data(), /*accumulate=*/true, grad_x);
  }
  const bool grad_x_in_loop = grad_x && !grad_x_by_convolution;
  const int64_t buffer_size = (grad_x_in_loop || grad_weight) ? (K + p.out_channels) * width : 0;

  parallel_for_with_buffer(plan.chunks, buffer_size, [&](int64_t chunk, float* buffer) {
    float* columns = buffer;                  // [K, cols]
    float* gathered = buffer + K * width;     // [C_out, cols]
    for (int64_t group = plan.first_group(chunk); group < plan.end_group(chunk); ++group) {
      const int64_t n0 = plan.first_image(group), count = plan.images_in(group), cols = count * P;
      const float* gy_images = grad_y + n0 * y_image;
      if (grad_bias)
        for (int64_t i = 0; i < count; ++i)
          add_channel_sums(gy_images + i * y_image, p.out_channels, P, bias_partials.data() + chunk * p.out_channels);
      if (!grad_x_in_loop && !grad_weight) continue;
      const float* gy = images_as_matrix(gy_images, count, p.out_channels, P, gathered);  // [C_out, cols]
      if (grad_weight) {
        for (int64_t i = 0; i < count; ++i) im2col(g, x + (n0 + i) * x_image, columns + i * P, cols);
        // partial [C_out, K] += gy [C_out, cols] columns^T [cols, K]
        gemm(false, true, p.out_channels, K, cols, 1.0f, gy, cols, columns, cols, 1.0f,
             weight_partials.data() + chunk * weight_size, K);
      }
      if (grad_x_in_loop) {
        // columns [K, cols] = weight^T [K, C_out] gy [C_out, cols]; then back to the pixels.
        gemm(true, false, K, cols, p.out_channels, 1.0f, weight, K, gy, cols, 0.0f, columns, cols);
        for (int64_t i = 0; i < count; ++i) col2im_add(g, columns + i * P, cols, grad_x + (n0 + i) * x_image);
      }
    }
  });
  add_chunk_partials(plan.chunks, weight_partials, weight_size, grad_weight, bias_partials, p.out_channels,
                     grad_bias);
}

// --- conv_transpose2d ---------------------------------------------------------------
// Per group of B images (P = H W input positions each, K = C_out KH KW):
//   X       [C_in, B P]     = the group's x side by side
//   columns [K, B P]        = weight^T [K, C_in] X        (weight is stored [C_in, K])
//   y[n]                    = bias, then col2im of its block of columns

void conv_transpose2d_forward(const ConvParams& p, const float* x, const float* weight, const float* bias,
                              float* y) {
  const ImageGeometry g = conv_transpose2d_geometry(p);
  const int64_t K = column_rows(g), P = column_cols(g);
  const int64_t x_image = p.in_channels * P;
  const int64_t y_plane = p.out_height * p.out_width;
  const int64_t y_image = p.out_channels * y_plane;
  const BatchPlan plan(p.batch, P);
  const int64_t width = plan.group_size * P;
  parallel_for_with_buffer(plan.groups, (K + p.in_channels) * width, [&](int64_t group, float* buffer) {
    const int64_t n0 = plan.first_image(group), count = plan.images_in(group), cols = count * P;
    float* columns = buffer;                // [K, cols]
    float* gathered = buffer + K * width;   // [C_in, cols]
    const float* xs = images_as_matrix(x + n0 * x_image, count, p.in_channels, P, gathered);
    gemm(true, false, K, cols, p.in_channels, 1.0f, weight, K, xs, cols, 0.0f, columns, cols);
    // Scatter every column back onto the pixels of its receptive field.
    for (int64_t i = 0; i < count; ++i) {
      float* yn = y + (n0 + i) * y_image;
      fill_with_bias(bias, p.out_channels, y_plane, yn);
      col2im_add(g, columns + i * P, cols, yn);
    }
  });
}

// Per group: columns = im2col(grad_y) [K, B P] (the adjoint of col2im: the
// gradient of a column entry is the gradient of the pixel it was added to);
//   grad_x as [C_in, B P]       += weight [C_in, K] columns   (a conv2d of grad_y)
//   partial grad_weight [C_in, K] += X [C_in, B P] columns^T
void conv_transpose2d_backward(const ConvParams& p, const float* x, const float* weight, const float* grad_y,
                               float* grad_x, float* grad_weight, float* grad_bias) {
  const ImageGeometry g = conv_transpose2d_geometry(p);
  const int64_t K = column_rows(g), P = column_cols(g);
  const int64_t x_image = p.in_channels * P;
  const int64_t y_plane = p.out_height * p.out_width;
  const int64_t y_image = p.out_channels * y_plane;
  const int64_t weight_size = p.in_channels * K;
  const BatchPlan plan(p.batch, P);
  const int64_t width = plan.group_size * P;
  std::vector<float> weight_partials(grad_weight ? static_cast<std::size_t>(plan.chunks * weight_size) : 0, 0.0f);
  std::vector<double> bias_partials(grad_bias ? static_cast<std::size_t>(plan.chunks * p.out_channels) : 0, 0.0);
  const int64_t buffer_size = (grad_x || grad_weight) ? (K + p.in_channels) * width : 0;

  parallel_for_with_buffer(plan.chunks, buffer_size, [&](int64_t chunk, float* buffer) {
    float* columns = buffer;               // [K, cols]
    float* matrix = buffer + K * width;    // [C_in, cols]
    for (int64_t group = plan.first_group(chunk); group < plan.end_group(chunk); ++group) {
      const int64_t n0 = plan.first_image(group), count = plan.images_in(group), cols = count * P;
      if (grad_bias)
        for (int64_t i = 0; i < count; ++i)
          add_channel_sums(grad_y + (n0 + i) * y_image, p.out_channels, y_plane,
                           bias_partials.data() + chunk * p.out_channels);
      if (!grad_x && !grad_weight) continue;
      for (int64_t i = 0; i < count; ++i) im2col(g, grad_y + (n0 + i) * y_image, columns + i * P, cols);
      if (grad_x) {
        // grad_x [C_in, cols] += weight [C_in, K] columns [K, cols]; a single
        // image's grad_x[n] is that matrix, so the GEMM adds into it directly.
        if (count == 1) {
          gemm(false, false, p.in_channels, cols, K, 1.0f, weight, K, columns, cols, 1.0f, grad_x + n0 * x_image,
               cols);
        } else {
          gemm(false, false, p.in_channels, cols, K, 1.0f, weight, K, columns, cols, 0.0f, matrix, cols);
          matrix_to_images(matrix, count, p.in_channels, P, /*accumulate=*/true, grad_x + n0 * x_image);
        }
      }
      if (grad_weight) {
        // partial [C_in, K] += X [C_in, cols] columns^T [cols, K]
        const float* xs = images_as_matrix(x + n0 * x_image, count, p.in_channels, P, matrix);
        gemm(false, true, p.in_channels, K, cols, 1.0f, xs, cols, columns, cols, 1.0f,
             weight_partials.data() + chunk * weight_size, K);
      }
    }
  });
  add_chunk_partials(plan.chunks, weight_partials, weight_size, grad_weight, bias_partials, p.out_channels,
                     grad_bias);
}

}  // namespace engine::cpu
