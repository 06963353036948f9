// CUDA avg_pool2d against the CPU backend.
//
// Tolerance: none. The forward sums each window in the same row-major order
// in float and divides by k^2, as the CPU does; the backward gathers each
// input's shares in the CPU's (oh, ow) order starting from the same value
// (kernels/cuda/pool.cu), so the bits match, also for overlapping windows.
#include <gtest/gtest.h>

#include "tests/cuda/cuda_test_util.h"

namespace engine {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::random_leaf;
using testing::Tolerance;

TEST(CudaPool, AvgPool2dMatchesCpuBitForBit) {
  ENGINE_SKIP_WITHOUT_CUDA();
  struct Case {
    Shape shape;
    int64_t kernel, stride;
  };
  const Case cases[] = {
      {{2, 3, 7, 7}, 7, 0},     // the UNet's 7x7 -> 1x1
      {{1, 5, 28, 28}, 2, 0},   // batch 1, 2x2 pooling
      {{3, 67, 9, 11}, 3, 2},   // overlapping windows, odd extents, 67 channels
      {{2, 2, 10, 10}, 3, 3},   // a remainder the windows do not reach
      {{1, 1, 6, 9}, 4, 1},     // heavy overlap: up to 16 windows per input
  };
  for (const Case& c : cases) {
    const Tensor x = random_leaf(c.shape, 1);
    const int64_t k = c.kernel, s = c.stride;
    expect_cuda_matches_cpu([k, s](const std::vector<Tensor>& in) { return avg_pool2d(in[0], k, s); }, {x},
                            Tolerance{}, Tolerance{},
                            "avg_pool2d " + shape_str(c.shape) + " k" + std::to_string(k) + " s" + std::to_string(s));
  }
}

}  // namespace
}  // namespace engine
