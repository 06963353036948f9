#include "kernels/cpu/reduce.h"

#include <algorithm>
#include <vector>

namespace engine::cpu {
namespace {

constexpr int64_t kReduceBlock = 4096;

// sum over i < n of term(i), in double, with a thread-count-independent order.
template <typename Term>
double blocked_sum(int64_t n, Term term) {
  const int64_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  std::vector<double> block_sums(static_cast<std::size_t>(blocks), 0.0);
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    double s = 0.0;
    const int64_t end = std::min(n, (blk + 1) * kReduceBlock);
    for (int64_t i = blk * kReduceBlock; i < end; ++i) s += term(i);
    block_sums[static_cast<std::size_t>(blk)] = s;
  }
  double total = 0.0;
  for (double s : block_sums) total += s;
  return total;
}

}  // namespace

void sum_forward(const float* x, float* out, int64_t n) {
  *out = static_cast<float>(blocked_sum(n, [x](int64_t i) { return static_cast<double>(x[i]); }));
}

void sum_backward(const float* grad_out, float factor, float* grad_x, int64_t n) {
  const float g = grad_out[0] * factor;
#pragma omp parallel for simd schedule(static) if (parallel : n > 32768)  // a plain if() would also switch off simd
  for (int64_t i = 0; i < n; ++i) grad_x[i] += g;
}

void mse_forward(const float* pred, const float* target, float* out, int64_t n) {
  const double total = blocked_sum(n, [=](int64_t i) {
    const double d = static_cast<double>(pred[i]) - target[i];
    return d * d;
  });
  *out = static_cast<float>(total / static_cast<double>(n));
}

void mse_backward(const float* pred, const float* target, const float* grad_out, float* grad_pred,
                  float* grad_target, int64_t n) {
  const float g = 2.0f * grad_out[0] / static_cast<float>(n);
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    const float d = (pred[i] - target[i]) * g;
    if (grad_pred) grad_pred[i] += d;
    if (grad_target) grad_target[i] -= d;
  }
}

}  // namespace engine::cpu
