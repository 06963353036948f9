// Elementwise kernels: one thread per output element, grid-stride loops
// (launch.cuh). The math and the [rows, cols] broadcasting layouts are those
// of kernels/cpu/elementwise.cpp; the results agree with it bit for bit
// except where a sum is reduced (broadcast_backward onto a per-row or scalar
// operand), whose order differs (a tree instead of a loop) in double before
// the final rounding to float.
#include "kernels/cuda/elementwise.h"

#include "kernels/cuda/full_reduce.cuh"

namespace engine::cuda {
namespace {

struct AddOp {
  __device__ float operator()(float x, float y) const { return x + y; }
};
struct SubOp {
  __device__ float operator()(float x, float y) const { return x - y; }
};
struct MulOp {
  __device__ float operator()(float x, float y) const { return x * y; }
};

// Both operands full: element i of each (the common case, no index arithmetic).
template <typename Op>
__global__ void binary_flat_kernel(const float* a, const float* b, float* out, int64_t n, Op op) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) out[i] = op(a[i], b[i]);
}

// General case: thread i owns output element i = r * cols + c and reads each
// operand at r * row_stride + c * col_stride.
template <typename Index, typename Op>
__global__ void binary_broadcast_kernel(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb,
                                        float* out, Index n, Index cols, Op op) {
  ENGINE_GRID_STRIDE_LOOP(Index, i, n) {
    const Index r = i / cols, c = i - r * cols;
    out[i] = op(a[r * la.row_stride + c * la.col_stride], b[r * lb.row_stride + c * lb.col_stride]);
  }
}

template <typename Op>
void binary_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                    int64_t rows, int64_t cols, Op op) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  cudaStream_t stream = current_stream();
  const bool both_full = la.col_stride == 1 && lb.col_stride == 1 && la.row_stride == cols && lb.row_stride == cols;
  if (both_full)
    binary_flat_kernel<<<grid_for(n), kThreads, 0, stream>>>(a, b, out, n, op);
  else if (fits_int32(n))
    binary_broadcast_kernel<int32_t><<<grid_for(n), kThreads, 0, stream>>>(a, la, b, lb, out, static_cast<int32_t>(n),
                                                                           static_cast<int32_t>(cols), op);
  else
    binary_broadcast_kernel<int64_t><<<grid_for(n), kThreads, 0, stream>>>(a, la, b, lb, out, n, cols, op);
  CUDA_CHECK_LAUNCH();
}

// term(r, c) = grad_out[r, c] * (factor ? factor[r, c] : 1), in double as on the CPU.
struct BackwardTerm {
  const float* grad_out;
  const float* factor;
  BroadcastOperand factor_layout;
  int64_t cols;
  __device__ double at(int64_t r, int64_t c) const {
    const double g = grad_out[r * cols + c];
    return factor ? g * factor[r * factor_layout.row_stride + c * factor_layout.col_stride] : g;
  }
  __device__ double operator()(int64_t i) const { return at(i / cols, i % cols); }  // flat index (scalar case)
};

// Full gradient: no reduction, thread i updates element i.
template <typename Index>
__global__ void backward_full_kernel(BackwardTerm term, float sign, float* grad, int64_t grad_row_stride, Index n,
                                     Index cols) {
  ENGINE_GRID_STRIDE_LOOP(Index, i, n) {
    const Index r = i / cols, c = i - r * cols;
    grad[r * grad_row_stride + c] += static_cast<float>(static_cast<double>(sign) * term.at(r, c));
  }
}

// Per-row gradient: block b sums rows b, b + gridDim.x, ...; each row by all
// threads of the block (thread t takes columns t, t + blockDim.x, ...), then
// a fixed tree.
__global__ void backward_rows_kernel(BackwardTerm term, float sign, float* grad, int64_t grad_row_stride,
                                     int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += term.at(r, c);
    s = block_sum(s);
    if (threadIdx.x == 0) grad[r * grad_row_stride] += static_cast<float>(static_cast<double>(sign) * s);
  }
}

__global__ void affine_forward_kernel(const float* a, float factor, float offset, float* out, int64_t n) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) out[i] = a[i] * factor + offset;
}

__global__ void affine_backward_kernel(const float* grad_out, float factor, float* grad_a, int64_t n) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) grad_a[i] += grad_out[i] * factor;
}

__global__ void accumulate_kernel(float* dst, const float* src, int64_t n) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) dst[i] += src[i];
}

__global__ void fill_kernel(float* out, float value, int64_t n) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, i, n) out[i] = value;
}

__global__ void increment_i64_kernel(int64_t* counter) { counter[0] += 1; }

}  // namespace

void add_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols) {
  binary_forward(a, la, b, lb, out, rows, cols, AddOp{});
}

void sub_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols) {
  binary_forward(a, la, b, lb, out, rows, cols, SubOp{});
}

void mul_forward(const float* a, BroadcastOperand la, const float* b, BroadcastOperand lb, float* out,
                 int64_t rows, int64_t cols) {
  binary_forward(a, la, b, lb, out, rows, cols, MulOp{});
}

void broadcast_backward(const float* grad_out, const float* factor, BroadcastOperand factor_layout, float sign,
                        float* grad, BroadcastOperand grad_layout, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  const BackwardTerm term{grad_out, factor, factor_layout, cols};
  cudaStream_t stream = current_stream();
  if (grad_layout.col_stride == 1) {  // full gradient
    if (fits_int32(n))
      backward_full_kernel<int32_t><<<grid_for(n), kThreads, 0, stream>>>(
          term, sign, grad, grad_layout.row_stride, static_cast<int32_t>(n), static_cast<int32_t>(cols));
    else
      backward_full_kernel<int64_t><<<grid_for(n), kThreads, 0, stream>>>(term, sign, grad, grad_layout.row_stride, n,
                                                                          cols);
    CUDA_CHECK_LAUNCH();
    return;
  }
  if (grad_layout.row_stride != 0) {  // per-row gradient
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(rows, kMaxBlocks));
    backward_rows_kernel<<<blocks, kThreads, 0, stream>>>(term, sign, grad, grad_layout.row_stride, rows, cols);
    CUDA_CHECK_LAUNCH();
    return;
  }
  full_sum(term, n, grad, 1.0, sign, /*accumulate=*/true);  // scalar gradient
}

void affine_forward(const float* a, float factor, float offset, float* out, int64_t n) {
  if (n == 0) return;
  affine_forward_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(a, factor, offset, out, n);
  CUDA_CHECK_LAUNCH();
}

void affine_backward(const float* grad_out, float factor, float* grad_a, int64_t n) {
  if (n == 0) return;
  affine_backward_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(grad_out, factor, grad_a, n);
  CUDA_CHECK_LAUNCH();
}

void accumulate(float* dst, const float* src, int64_t n) {
  if (n == 0) return;
  accumulate_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(dst, src, n);
  CUDA_CHECK_LAUNCH();
}

void fill(float* out, float value, int64_t n) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(out, value, n);
  CUDA_CHECK_LAUNCH();
}

void increment_i64(int64_t* counter) {
  increment_i64_kernel<<<1, 1, 0, current_stream()>>>(counter);
  CUDA_CHECK_LAUNCH();
}

}  // namespace engine::cuda
