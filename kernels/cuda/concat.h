// CUDA twins of kernels/cpu/concat.h: concatenation along one dimension,
// every tensor viewed as [outer, extent_k, inner] (see the CPU header).
// Same functions and arguments; `inputs`, `extents` and `grad_inputs` are
// HOST arrays (of device pointers, for inputs and grad_inputs), read on the
// host to issue one launch per input. Current stream.
#pragma once
#include <cstddef>
#include <cstdint>

namespace engine::cuda {

// out [outer, total, inner] <- inputs[k] [outer, extents[k], inner], k < count.
// element_size 1, 2, 4 or 8 bytes (any dtype: the copy does not look at values).
void concat_forward(const void* const* inputs, const int64_t* extents, int64_t count, void* out, int64_t outer,
                    int64_t inner, std::size_t element_size);

// grad_inputs[k] [outer, extents[k], inner] += its slice of grad_out [outer, total, inner].
// grad_inputs[k] may be null (that input needs no gradient).
void concat_backward(const float* grad_out, const int64_t* extents, int64_t count, float* const* grad_inputs,
                     int64_t outer, int64_t inner);

}  // namespace engine::cuda
