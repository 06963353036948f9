// CUDA add, sub, mul (every broadcasting layout, both operand orders), scale,
// add_scalar and accumulate_, against the CPU backend on the same inputs.
//
// Tolerances:
//   * forward of add/sub/mul, and gradients onto a FULL operand: the same
//     single IEEE operation per element on both devices (the backward's
//     product is formed in double, exactly, then rounded once): same bits.
//   * gradients onto a per-row or scalar operand: sums in double whose order
//     differs (a tree on the GPU, a loop on the CPU); the double results
//     differ by ~1e-16 relative, so the float results by at most one rounding
//     step: atol 1e-7 (results near 0 after cancellation), rtol 3e-7 (2 ulp).
//   * scale/add_scalar: a * f + o may be one fused multiply-add on one device
//     and two roundings on the other: 1 ulp, rtol 2e-7.
#include <gtest/gtest.h>

#include "tests/cuda/cuda_test_util.h"

namespace engine {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::kCuda;
using testing::random_leaf;
using testing::Tolerance;

constexpr Tolerance kExact{0.0, 0.0};
constexpr Tolerance kReduced{1e-7, 3e-7};

using BinaryOp = Tensor (*)(const Tensor&, const Tensor&);

struct NamedOp {
  const char* name;
  BinaryOp op;
};
const NamedOp kOps[] = {{"add", &add}, {"sub", &sub}, {"mul", &mul}};

// f(a, b) in both operand orders, both inputs differentiated.
void check_pair(const Shape& big, const Shape& small, Tolerance small_grad_tol, uint64_t seed) {
  for (const NamedOp& op : kOps) {
    const std::string what = std::string(op.name) + " " + shape_str(big) + " with " + shape_str(small);
    const Tensor a = random_leaf(big, seed), b = random_leaf(small, seed + 1);
    auto f = [&](const std::vector<Tensor>& in) { return op.op(in[0], in[1]); };
    // Forward exact; the big operand's gradient exact, the small one's reduced.
    expect_cuda_matches_cpu(f, {a, b.detach()}, kExact, kExact, what + " [grad of big only]");
    expect_cuda_matches_cpu(f, {a, b}, kExact, small_grad_tol, what);
    auto g = [&](const std::vector<Tensor>& in) { return op.op(in[1], in[0]); };
    expect_cuda_matches_cpu(g, {a, b}, kExact, small_grad_tol, what + " (swapped)");
  }
}

TEST(CudaElementwise, SameShape) {
  ENGINE_SKIP_WITHOUT_CUDA();
  check_pair({3, 5, 7}, {3, 5, 7}, kExact, 1);
  check_pair({1, 1, 13, 17}, {1, 1, 13, 17}, kExact, 2);  // batch 1, odd extents
  check_pair({100003}, {100003}, kExact, 3);              // several blocks, a partial last one
}

TEST(CudaElementwise, PerRowBroadcast) {
  ENGINE_SKIP_WITHOUT_CUDA();
  check_pair({2, 3, 5, 7}, {2, 3, 1, 1}, kReduced, 10);   // [N, C, 1, 1] against [N, C, H, W]
  check_pair({1, 67, 9, 9}, {1, 67, 1, 1}, kReduced, 11); // batch 1, 67 channels (not a multiple of 32)
  check_pair({5, 11}, {5, 1}, kReduced, 12);
  check_pair({2, 1, 300, 301}, {2, 1, 1, 1}, kReduced, 13);  // long rows: many columns per thread
}

TEST(CudaElementwise, ScalarBroadcast) {
  ENGINE_SKIP_WITHOUT_CUDA();
  check_pair({4, 9, 11}, {}, kReduced, 20);
  check_pair({4, 9, 11}, {1, 1, 1}, kReduced, 21);
  check_pair({3, 70001}, {1}, kReduced, 22);  // 210003 elements: the two-level reduction with 52 chunks
  check_pair({1}, {}, kExact, 23);
}

TEST(CudaElementwise, ScaleAndAddScalar) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const Tensor a = random_leaf({7, 31, 5}, 30);
  const Tolerance one_ulp{0.0, 2e-7};
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return scale(in[0], -1.75f); }, {a}, one_ulp, one_ulp,
                          "scale");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return add_scalar(in[0], 0.3f); }, {a}, one_ulp,
                          kExact, "add_scalar");
}

TEST(CudaElementwise, GradientAccumulationThroughReuse) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // x feeds two ops: autograd adds the two gradients with accumulate_.
  const Tensor x = random_leaf({6, 17}, 40);
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return add(mul(in[0], in[0]), in[0]); }, {x}, kExact,
                          Tolerance{0.0, 2e-7}, "x * x + x");
}

TEST(CudaElementwise, AccumulateInPlace) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const Tensor a = testing::random_tensor({1001}, 50), b = testing::random_tensor({1001}, 51);
  Tensor cpu = a.clone();
  accumulate_(cpu, b);
  Tensor gpu = a.to(kCuda);
  accumulate_(gpu, b.to(kCuda));
  EXPECT_EQ(testing::float_bits(gpu), testing::float_bits(cpu));
}

TEST(CudaElementwise, ReducedGradientsAreDeterministic) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // The same scalar-operand backward twice: the fixed partition gives the same bits.
  const Tensor a = testing::random_tensor({3, 70001}, 60).to(kCuda);
  std::vector<uint32_t> first;
  for (int run = 0; run < 2; ++run) {
    Tensor s = Tensor::scalar(0.5f, kCuda);
    s.set_requires_grad();
    sum(mul(a, s)).backward();
    if (run == 0)
      first = testing::float_bits(s.grad());
    else
      EXPECT_EQ(testing::float_bits(s.grad()), first);
  }
}

TEST(CudaElementwise, MixedDevicesNameBoth) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const Tensor cpu = Tensor::zeros({2, 3}), gpu = Tensor::zeros({2, 3}, DType::F32, kCuda);
  testing::expect_error_containing([&] { add(cpu, gpu); }, {"add", "'a'", "'b'", "same device", "cpu", "cuda:0"});
  testing::expect_error_containing([&] { mul(gpu, cpu); }, {"mul", "cuda:0", "cpu"});
  Tensor dst = gpu.clone();
  testing::expect_error_containing([&] { accumulate_(dst, cpu); }, {"accumulate_", "cuda:0", "cpu"});
}

}  // namespace
}  // namespace engine
