// CUDA batch_norm2d (training and eval, running statistics, gradients of x,
// weight and bias) against the CPU backend, and the fused BN-apply + GELU
// kernels against the unfused pair and against the CPU composition.
//
// Tolerances. Both devices compute the per-channel sums in double and round
// the statistics to float once; only the order of the double additions
// differs, so mean, inv_std and the running statistics come out the same
// (or one rounding step apart): atol 1e-6, rtol 1e-6. The per-element
// formulas (kernels/common/batchnorm_math.h) are the same float expressions,
// but either compiler may fuse a multiply and an add into one FMA where the
// other rounds twice: one ulp per operation, a few ulp of the outputs
// (|y| <= ~5): forward atol 2e-6, rtol 2e-6. grad_x = inv_std (g - mean_g -
// xhat mean_g_xhat) subtracts terms of size ~1-3 and is scaled by inv_std
// ~1.7: atol 5e-6, rtol 1e-5. The fused kernels recompute z with the very
// function the unfused apply uses, so they match the unfused pair to 1e-7.
#include <gtest/gtest.h>

#include "tests/cuda/cuda_test_util.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/activation.h"
#include "kernels/cuda/batchnorm.h"
#endif

namespace engine {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_matches;
using testing::kCuda;
using testing::random_leaf;
using testing::random_tensor;
using testing::Tolerance;

constexpr Tolerance kStatsTol{1e-6, 1e-6};
constexpr Tolerance kForwardTol{2e-6, 2e-6};
constexpr Tolerance kGradTol{5e-6, 1e-5};

const Shape kShapes[] = {
    {2, 3, 5, 5},    // small
    {1, 67, 7, 9},   // batch 1, 67 channels, odd plane
    {40, 3, 4, 4},   // more samples than chunks (two planes per chunk)
    {33, 8, 28, 28}, // the assignment's plane; 33 samples: 17 chunks, the last one short
    {4, 5, 1, 1},    // 1x1 planes (m = N = 4)
};

TEST(CudaBatchNorm, TrainingForwardBackwardAndRunningStats) {
  ENGINE_SKIP_WITHOUT_CUDA();
  for (const Shape& shape : kShapes) {
    const int64_t channels = shape[1];
    const Tensor x = random_leaf(shape, 1, -2.0f, 3.0f);  // mean ~0.5: the two-pass variance matters
    const Tensor weight = random_leaf({channels}, 2, 0.5f, 1.5f), bias = random_leaf({channels}, 3, -0.5f, 0.5f);
    const Tensor rm0 = random_tensor({channels}, 4), rv0 = random_tensor({channels}, 5, 0.5f, 2.0f);
    Tensor rm_cpu = rm0.clone(), rv_cpu = rv0.clone(), rm_gpu = rm0.to(kCuda), rv_gpu = rv0.to(kCuda);
    int call = 0;
    // f runs once on the CPU inputs, then once on the CUDA ones; each uses its device's running stats.
    auto f = [&](const std::vector<Tensor>& in) {
      Tensor& rm = call == 0 ? rm_cpu : rm_gpu;
      Tensor& rv = call == 0 ? rv_cpu : rv_gpu;
      ++call;
      return batch_norm2d(in[0], in[1], in[2], rm, rv, /*training=*/true, 0.1, 1e-5);
    };
    const std::string what = "batch_norm2d train " + shape_str(shape);
    expect_cuda_matches_cpu(f, {x, weight, bias}, kForwardTol, kGradTol, what);
    expect_matches(rm_gpu, rm_cpu, kStatsTol, what + " running_mean");
    expect_matches(rv_gpu, rv_cpu, kStatsTol, what + " running_var");
  }
}

TEST(CudaBatchNorm, EvalForwardBackward) {
  ENGINE_SKIP_WITHOUT_CUDA();
  for (const Shape& shape : kShapes) {
    const int64_t channels = shape[1];
    const Tensor x = random_leaf(shape, 11);
    const Tensor weight = random_leaf({channels}, 12, 0.5f, 1.5f), bias = random_leaf({channels}, 13);
    Tensor rm_cpu = random_tensor({channels}, 14), rv_cpu = random_tensor({channels}, 15, 0.5f, 2.0f);
    Tensor rm_gpu = rm_cpu.to(kCuda), rv_gpu = rv_cpu.to(kCuda);
    int call = 0;
    auto f = [&](const std::vector<Tensor>& in) {
      Tensor& rm = call == 0 ? rm_cpu : rm_gpu;
      Tensor& rv = call == 0 ? rv_cpu : rv_gpu;
      ++call;
      return batch_norm2d(in[0], in[1], in[2], rm, rv, /*training=*/false, 0.1, 1e-5);
    };
    expect_cuda_matches_cpu(f, {x, weight, bias}, kForwardTol, kGradTol, "batch_norm2d eval " + shape_str(shape));
    EXPECT_EQ(testing::float_bits(rm_gpu), testing::float_bits(rm_cpu)) << "eval must not touch running_mean";
  }
}

TEST(CudaBatchNorm, SameBitsEveryRun) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const Tensor x = random_tensor({33, 8, 28, 28}, 21).to(kCuda);
  std::vector<uint32_t> first_y, first_gw;
  for (int run = 0; run < 2; ++run) {
    Tensor w = Tensor::ones({8}, kCuda), b = Tensor::zeros({8}, DType::F32, kCuda);
    w.set_requires_grad();
    Tensor rm = Tensor::zeros({8}, DType::F32, kCuda), rv = Tensor::ones({8}, kCuda);
    Tensor y = batch_norm2d(x, w, b, rm, rv, true);
    sum(mul(y, y)).backward();
    if (run == 0) {
      first_y = testing::float_bits(y);
      first_gw = testing::float_bits(w.grad());
    } else {
      EXPECT_EQ(testing::float_bits(y), first_y);
      EXPECT_EQ(testing::float_bits(w.grad()), first_gw);
    }
  }
}

TEST(CudaBatchNorm, MixedDevicesNameBoth) {
  ENGINE_SKIP_WITHOUT_CUDA();
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  testing::expect_error_containing(
      [&] {
        batch_norm2d(Tensor::zeros({2, 3, 4, 4}, DType::F32, kCuda), Tensor::ones({3}), Tensor::zeros({3}), rm, rv,
                     true);
      },
      {"batch_norm2d", "'x'", "'weight'", "cuda:0", "cpu"});
}

// --- Fused BN + GELU ------------------------------------------------------------
// (No op exposes the fused kernels yet, so these tests call them directly:
// only in a CUDA build.)
#ifdef ENGINE_WITH_CUDA

struct FusedCase {
  Shape shape;
  bool training;
};

// Runs the kernels directly on device tensors: statistics, then either the
// fused pair or the unfused chain (apply, gelu; gelu_backward, bn backward).
struct FusedRun {
  Tensor y, grad_x, grad_weight, grad_bias;
};

FusedRun run_bn_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& grad_y, bool training,
                     bool fused) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor mean = Tensor::empty({C}, DType::F32, kCuda), inv_std = Tensor::empty({C}, DType::F32, kCuda);
  Tensor rm = Tensor::zeros({C}, DType::F32, kCuda), rv = Tensor::ones({C}, kCuda);
  if (training)
    cuda::batchnorm_batch_stats(x.data<float>(), N, C, HW, 0.1, 1e-5, mean.data<float>(), inv_std.data<float>(),
                                rm.data<float>(), rv.data<float>());
  else
    cuda::batchnorm_running_stats(rm.data<float>(), rv.data<float>(), C, 1e-5, mean.data<float>(),
                                  inv_std.data<float>());
  FusedRun r;
  r.y = Tensor::empty_like(x);
  r.grad_x = Tensor::zeros_like(x);
  r.grad_weight = Tensor::zeros_like(weight);
  r.grad_bias = Tensor::zeros_like(weight);
  if (fused) {
    cuda::batchnorm_gelu_apply(x.data<float>(), mean.data<float>(), inv_std.data<float>(), weight.data<float>(),
                               bias.data<float>(), r.y.data<float>(), N, C, HW);
    cuda::batchnorm_gelu_backward(x.data<float>(), grad_y.data<float>(), mean.data<float>(), inv_std.data<float>(),
                                  weight.data<float>(), bias.data<float>(), training, r.grad_x.data<float>(),
                                  r.grad_weight.data<float>(), r.grad_bias.data<float>(), N, C, HW);
  } else {
    Tensor z = Tensor::empty_like(x), grad_z = Tensor::empty_like(x);  // gelu_backward writes it
    cuda::batchnorm_apply(x.data<float>(), mean.data<float>(), inv_std.data<float>(), weight.data<float>(),
                          bias.data<float>(), z.data<float>(), N, C, HW);
    cuda::gelu_forward(z.data<float>(), r.y.data<float>(), z.numel());
    cuda::gelu_backward(z.data<float>(), grad_y.data<float>(), grad_z.data<float>(), z.numel());
    cuda::batchnorm_backward(x.data<float>(), grad_z.data<float>(), mean.data<float>(), inv_std.data<float>(),
                             weight.data<float>(), training, r.grad_x.data<float>(), r.grad_weight.data<float>(),
                             r.grad_bias.data<float>(), N, C, HW);
  }
  return r;
}

TEST(CudaBatchNorm, FusedGeluMatchesUnfusedKernels) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const Tolerance tight{1e-7, 1e-6};
  for (const FusedCase& c : {FusedCase{{2, 3, 5, 5}, true}, FusedCase{{1, 67, 7, 9}, true},
                             FusedCase{{33, 8, 28, 28}, true}, FusedCase{{3, 5, 4, 4}, false}}) {
    const int64_t C = c.shape[1];
    const Tensor x = random_tensor(c.shape, 31, -2.0f, 2.0f).to(kCuda);
    const Tensor w = random_tensor({C}, 32, 0.5f, 1.5f).to(kCuda), b = random_tensor({C}, 33).to(kCuda);
    const Tensor gy = random_tensor(c.shape, 34).to(kCuda);
    const FusedRun fused = run_bn_gelu(x, w, b, gy, c.training, true);
    const FusedRun reference = run_bn_gelu(x, w, b, gy, c.training, false);
    const std::string what = "fused bn+gelu " + shape_str(c.shape) + (c.training ? " train" : " eval");
    expect_matches(fused.y, reference.y, tight, what + " y");
    expect_matches(fused.grad_x, reference.grad_x, tight, what + " grad_x");
    expect_matches(fused.grad_weight, reference.grad_weight, Tolerance{1e-6, 1e-6}, what + " grad_weight");
    expect_matches(fused.grad_bias, reference.grad_bias, Tolerance{1e-6, 1e-6}, what + " grad_bias");
  }
}

TEST(CudaBatchNorm, FusedGeluMatchesCpuComposition) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // CPU: gelu(batch_norm2d(x)) through autograd, with grad_y as the seed.
  const Shape shape{4, 6, 9, 9};
  const Tensor x = random_tensor(shape, 41, -2.0f, 2.0f), gy = random_tensor(shape, 44);
  Tensor w = random_tensor({6}, 42, 0.5f, 1.5f), b = random_tensor({6}, 43);
  Tensor xc = x.clone();
  xc.set_requires_grad();
  w.set_requires_grad();
  b.set_requires_grad();
  Tensor rm = Tensor::zeros({6}), rv = Tensor::ones({6});
  const Tensor y = gelu(batch_norm2d(xc, w, b, rm, rv, true));
  sum(mul(y, gy)).backward();

  const FusedRun gpu = run_bn_gelu(x.to(kCuda), w.detach().to(kCuda), b.detach().to(kCuda), gy.to(kCuda), true, true);
  // GELU adds its erff/expf differences (activation_test.cpp) to BN's.
  const Tolerance tol{1e-5, 2e-5};
  expect_matches(gpu.y, y, tol, "fused vs CPU y");
  expect_matches(gpu.grad_x, xc.grad(), tol, "fused vs CPU grad_x");
  expect_matches(gpu.grad_weight, w.grad(), Tolerance{2e-5, 2e-5}, "fused vs CPU grad_weight");
  expect_matches(gpu.grad_bias, b.grad(), Tolerance{2e-5, 2e-5}, "fused vs CPU grad_bias");
}

#endif  // ENGINE_WITH_CUDA

}  // namespace
}  // namespace engine
