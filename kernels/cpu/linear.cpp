// y = x W^T + b and its gradients, on top of the blocked GEMM (gemm.h).
#include "kernels/cpu/linear.h"

#include <algorithm>

#include "kernels/cpu/gemm.h"

namespace engine::cpu {
namespace {

// Columns of grad_y summed per OpenMP task: a row segment of 64 floats is
// one 256-byte stretch of memory, read with unit stride for every n.
constexpr int64_t kBiasColumnBlock = 64;

}  // namespace

void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t batch,
                    int64_t in_features, int64_t out_features) {
  // Start y from the bias (or zero) in every row, then let the GEMM add
  // x W^T onto it (beta = 1): the bias costs no extra pass over y.
  for (int64_t n = 0; n < batch; ++n) {
    float* y_row = y + n * out_features;
    if (bias != nullptr)
      std::copy(bias, bias + out_features, y_row);
    else
      std::fill(y_row, y_row + out_features, 0.0f);
  }
  // y [batch, out] += x [batch, in] * (weight [out, in])^T
  gemm(/*trans_a=*/false, /*trans_b=*/true, batch, out_features, in_features, 1.0f, x, in_features, weight, in_features,
       1.0f, y, out_features);
}

void linear_backward(const float* x, const float* weight, const float* grad_y, float* grad_x, float* grad_weight,
                     float* grad_bias, int64_t batch, int64_t in_features, int64_t out_features) {
  if (grad_x != nullptr) {
    // grad_x [batch, in] += grad_y [batch, out] * weight [out, in]
    gemm(false, false, batch, in_features, out_features, 1.0f, grad_y, out_features, weight, in_features, 1.0f, grad_x,
         in_features);
  }
  if (grad_weight != nullptr) {
    // grad_weight [out, in] += (grad_y [batch, out])^T * x [batch, in]: the
    // GEMM's K dimension is the batch.
    gemm(true, false, out_features, in_features, batch, 1.0f, grad_y, out_features, x, in_features, 1.0f, grad_weight,
         in_features);
  }
  if (grad_bias != nullptr) {
    // grad_bias[o] += sum_n grad_y[n, o]. Each block of columns is one task;
    // inside it the batch is summed in order (n = 0, 1, ...) in double.
    const int64_t blocks = (out_features + kBiasColumnBlock - 1) / kBiasColumnBlock;
#pragma omp parallel for schedule(static) if (batch * out_features > (1 << 16))
    for (int64_t block = 0; block < blocks; ++block) {
      const int64_t begin = block * kBiasColumnBlock;
      const int64_t width = std::min(kBiasColumnBlock, out_features - begin);
      double sums[kBiasColumnBlock] = {};
      for (int64_t n = 0; n < batch; ++n) {
        const float* row = grad_y + n * out_features + begin;
        for (int64_t j = 0; j < width; ++j) sums[j] += row[j];
      }
      for (int64_t j = 0; j < width; ++j) grad_bias[begin + j] += static_cast<float>(sums[j]);
    }
  }
}

}  // namespace engine::cpu
