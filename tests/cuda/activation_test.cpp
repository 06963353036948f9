// CUDA GELU against the CPU backend.
//
// Tolerance: both devices evaluate the same formula (kernels/common/gelu_math.h)
// in float, but with different erff/expf: CUDA's are within 2 ulp of the true
// value, glibc's within 1. For x in [-5, 5] that is an absolute difference of
// at most ~4 ulp of 1 (5e-7) inside erf, scaled by |0.5 x| <= 2.5 in gelu, and
// by |x| <= 5 in x * phi(x) of the derivative: atol 3e-6, rtol 2e-6.
#include <gtest/gtest.h>

#include "tests/cuda/cuda_test_util.h"

namespace engine {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::random_leaf;
using testing::Tolerance;

constexpr Tolerance kGeluTol{3e-6, 2e-6};

TEST(CudaActivation, GeluForwardAndBackward) {
  ENGINE_SKIP_WITHOUT_CUDA();
  for (const Shape& shape : {Shape{1}, Shape{1, 3, 7, 7}, Shape{2, 67, 13, 11}, Shape{300001}}) {
    const Tensor x = random_leaf(shape, 1, -5.0f, 5.0f);
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x}, kGeluTol, kGeluTol,
                            "gelu " + shape_str(shape));
  }
}

TEST(CudaActivation, GeluTails) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // Far tails: gelu(x) = x, gelu' = 1 on the right; -0 and 0 on the left (never NaN).
  Tensor x = Tensor::from_vector({-1e4f, -40.0f, -10.0f, 0.0f, 10.0f, 40.0f, 1e4f}, {7});
  x.set_requires_grad();
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x}, kGeluTol, kGeluTol,
                          "gelu tails");
}

}  // namespace
}  // namespace engine
