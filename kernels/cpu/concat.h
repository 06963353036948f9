// Concatenation along one dimension (torch.cat).
//
// Concatenating along dim d views every tensor as a 3-d block
//     input k: [outer, extent_k, inner]     output: [outer, total, inner]
// where outer is the product of the extents before d, inner the product of
// those after it, and total = sum_k extent_k. For each outer index the output
// row is the inputs' rows laid end to end:
//     out[o, offset_k + e, i] = input_k[o, e, i],   offset_k = extent_0 + .. + extent_{k-1}
// so the copy moves contiguous runs of extent_k * inner elements. The
// backward is the same picture read the other way: each input's gradient is
// its slice of the output gradient.
#pragma once
#include <cstddef>
#include <cstdint>

namespace engine::cpu {

// out [outer, total, inner] <- inputs[k] [outer, extents[k], inner], k < count.
// Elements are element_size bytes (any dtype: the copy does not look at values).
void concat_forward(const void* const* inputs, const int64_t* extents, int64_t count, void* out, int64_t outer,
                    int64_t inner, std::size_t element_size);

// grad_inputs[k] [outer, extents[k], inner] += its slice of grad_out [outer, total, inner].
// grad_inputs[k] may be null (that input needs no gradient).
void concat_backward(const float* grad_out, const int64_t* extents, int64_t count, float* const* grad_inputs,
                     int64_t outer, int64_t inner);

}  // namespace engine::cpu
