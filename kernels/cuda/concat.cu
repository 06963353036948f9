// Concatenation on the GPU: one launch per input. For input k, thread q owns
// element q of that input, viewed as [outer, run] with run = extent_k * inner:
//     o = q / run,  r = q % run
//     out[o * total * inner + offset_k * inner + r] = input_k[q]
// Reads are contiguous; writes are contiguous runs of `run` elements. The
// backward is the same map read the other way, adding into the gradient.
// Pure copies and one addition per element: the bits match the CPU's.
#include "kernels/cuda/concat.h"

#include "kernels/cuda/launch.cuh"

namespace engine::cuda {
namespace {

template <typename Element>
__global__ void concat_copy_kernel(const Element* input, Element* out, int64_t n, int64_t run, int64_t out_row,
                                   int64_t out_offset) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, q, n) {
    const int64_t o = q / run, r = q - o * run;
    out[o * out_row + out_offset + r] = input[q];
  }
}

__global__ void concat_backward_kernel(const float* grad_out, float* grad_input, int64_t n, int64_t run,
                                       int64_t out_row, int64_t out_offset) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, q, n) {
    const int64_t o = q / run, r = q - o * run;
    grad_input[q] += grad_out[o * out_row + out_offset + r];
  }
}

template <typename Element>
void copy_input(const void* input, void* out, int64_t n, int64_t run, int64_t out_row, int64_t out_offset) {
  concat_copy_kernel<Element><<<grid_for(n), kThreads, 0, current_stream()>>>(
      static_cast<const Element*>(input), static_cast<Element*>(out), n, run, out_row, out_offset);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void concat_forward(const void* const* inputs, const int64_t* extents, int64_t count, void* out, int64_t outer,
                    int64_t inner, std::size_t element_size) {
  int64_t total = 0;
  for (int64_t k = 0; k < count; ++k) total += extents[k];
  int64_t offset = 0;  // extent_0 + .. + extent_{k-1}
  for (int64_t k = 0; k < count; ++k) {
    const int64_t run = extents[k] * inner, n = outer * run;
    if (n > 0) {
      const int64_t out_row = total * inner, out_offset = offset * inner;
      switch (element_size) {
        case 1: copy_input<uint8_t>(inputs[k], out, n, run, out_row, out_offset); break;
        case 2: copy_input<uint16_t>(inputs[k], out, n, run, out_row, out_offset); break;
        case 4: copy_input<uint32_t>(inputs[k], out, n, run, out_row, out_offset); break;
        case 8: copy_input<uint64_t>(inputs[k], out, n, run, out_row, out_offset); break;
        default: throw Error(detail::concat_message("concat_forward: unsupported element size ", element_size));
      }
    }
    offset += extents[k];
  }
}

void concat_backward(const float* grad_out, const int64_t* extents, int64_t count, float* const* grad_inputs,
                     int64_t outer, int64_t inner) {
  int64_t total = 0;
  for (int64_t k = 0; k < count; ++k) total += extents[k];
  int64_t offset = 0;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t run = extents[k] * inner, n = outer * run;
    if (grad_inputs[k] != nullptr && n > 0) {
      concat_backward_kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(grad_out, grad_inputs[k], n, run,
                                                                             total * inner, offset * inner);
      CUDA_CHECK_LAUNCH();
    }
    offset += extents[k];
  }
}

}  // namespace engine::cuda
