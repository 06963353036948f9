#include "kernels/cpu/concat.h"

#include <cstring>
#include <vector>

namespace engine::cpu {
namespace {

// offsets[k] = extents[0] + .. + extents[k-1]; offsets[count] = total.
std::vector<int64_t> running_offsets(const int64_t* extents, int64_t count) {
  std::vector<int64_t> offsets(static_cast<std::size_t>(count) + 1, 0);
  for (int64_t k = 0; k < count; ++k) offsets[static_cast<std::size_t>(k) + 1] = offsets[static_cast<std::size_t>(k)] + extents[k];
  return offsets;
}

}  // namespace

// Pure copies: parallel over the outer index, no arithmetic, so trivially the
// same bits whatever the thread count.

void concat_forward(const void* const* inputs, const int64_t* extents, int64_t count, void* out, int64_t outer,
                    int64_t inner, std::size_t element_size) {
  const std::vector<int64_t> offsets = running_offsets(extents, count);
  const int64_t total = offsets.back();
  const std::size_t row_bytes = static_cast<std::size_t>(inner) * element_size;  // one step along dim
  auto* out_bytes = static_cast<unsigned char*>(out);
#pragma omp parallel for schedule(static) if (outer * total * inner > 32768)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < count; ++k) {
      const std::size_t run = static_cast<std::size_t>(extents[k]) * row_bytes;
      const auto* src = static_cast<const unsigned char*>(inputs[k]) + static_cast<std::size_t>(o) * run;
      unsigned char* dst = out_bytes + static_cast<std::size_t>(o * total + offsets[static_cast<std::size_t>(k)]) * row_bytes;
      if (run > 0) std::memcpy(dst, src, run);
    }
  }
}

void concat_backward(const float* grad_out, const int64_t* extents, int64_t count, float* const* grad_inputs,
                     int64_t outer, int64_t inner) {
  const std::vector<int64_t> offsets = running_offsets(extents, count);
  const int64_t total = offsets.back();
#pragma omp parallel for schedule(static) if (outer * total * inner > 32768)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < count; ++k) {
      float* grad = grad_inputs[k];
      if (!grad) continue;
      const int64_t run = extents[k] * inner;
      const float* src = grad_out + (o * total + offsets[static_cast<std::size_t>(k)]) * inner;
      float* dst = grad + o * run;
#pragma omp simd
      for (int64_t i = 0; i < run; ++i) dst[i] += src[i];
    }
  }
}

}  // namespace engine::cpu
