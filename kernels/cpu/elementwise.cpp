#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <vector>

namespace engine::cpu {
namespace {

// Reductions sum fixed blocks of this many elements, then the block sums in
// order: the same bits whatever the number of threads.
constexpr int64_t kReduceBlock = 4096;

template <typename Op>
void binary_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                    int64_t rows, int64_t cols, Op op) {
  const bool both_full = la.col_stride == 1 && lb.col_stride == 1 && la.row_stride == cols && lb.row_stride == cols;
  if (both_full) {  // the common case: one flat loop the compiler vectorises
    const int64_t n = rows * cols;
#pragma omp parallel for simd schedule(static) if (parallel : n > 32768)  // a plain if() would also switch off simd
    for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i]);
    return;
  }
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const float* a_row = a + r * la.row_stride;
    const float* b_row = b + r * lb.row_stride;
    float* out_row = out + r * cols;
    for (int64_t c = 0; c < cols; ++c) out_row[c] = op(a_row[c * la.col_stride], b_row[c * lb.col_stride]);
  }
}

}  // namespace

void add_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols) {
  binary_forward(a, la, b, lb, out, rows, cols, [](float x, float y) { return x + y; });
}

void sub_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols) {
  binary_forward(a, la, b, lb, out, rows, cols, [](float x, float y) { return x - y; });
}

void mul_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols) {
  binary_forward(a, la, b, lb, out, rows, cols, [](float x, float y) { return x * y; });
}

void broadcast_backward(const float* grad_out, const float* factor, BroadcastOperand factor_layout, float sign,
                        float* grad, BroadcastOperand grad_layout, int64_t rows, int64_t cols) {
  auto term = [&](int64_t r, int64_t c) -> double {
    const double g = grad_out[r * cols + c];
    return factor ? g * factor[r * factor_layout.row_stride + c * factor_layout.col_stride] : g;
  };
  if (grad_layout.col_stride == 1) {  // full gradient: no reduction
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        grad[r * grad_layout.row_stride + c] += static_cast<float>(sign * term(r, c));
    return;
  }
  if (grad_layout.row_stride != 0) {  // per-row gradient: sum each row
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t r = 0; r < rows; ++r) {
      double row_sum = 0.0;
      for (int64_t c = 0; c < cols; ++c) row_sum += term(r, c);
      grad[r * grad_layout.row_stride] += static_cast<float>(sign * row_sum);
    }
    return;
  }
  // Scalar gradient: sum everything, in fixed blocks of the flat index.
  const int64_t n = rows * cols;
  const int64_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  std::vector<double> block_sums(static_cast<std::size_t>(blocks), 0.0);
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    double s = 0.0;
    const int64_t end = std::min(n, (blk + 1) * kReduceBlock);
    for (int64_t i = blk * kReduceBlock; i < end; ++i) s += term(i / cols, i % cols);
    block_sums[static_cast<std::size_t>(blk)] = s;
  }
  double total = 0.0;
  for (double s : block_sums) total += s;
  grad[0] += static_cast<float>(sign * total);
}

void affine_forward(const float* a, float factor, float offset, float* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > 32768)  // a plain if() would also switch off simd
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * factor + offset;
}

void affine_backward(const float* grad_out, float factor, float* grad_a, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > 32768)  // a plain if() would also switch off simd
  for (int64_t i = 0; i < n; ++i) grad_a[i] += grad_out[i] * factor;
}

void accumulate(float* dst, const float* src, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > 32768)  // a plain if() would also switch off simd
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace engine::cpu
