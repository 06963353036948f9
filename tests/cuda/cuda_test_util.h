// Shared by the CUDA tests (tests/cuda/*_test.cpp): every CUDA op is checked
// against the CPU backend, the executable specification, on the same inputs.
//
//   expect_cuda_matches_cpu(f, inputs, forward_tol, backward_tol)
// runs f on CPU copies of `inputs` and on CUDA copies, compares the outputs,
// then backpropagates L = sum(f(inputs) * W) (W fixed random) on both devices
// and compares the gradient of every input that requires grad. The gradient
// reaching f is W on both devices exactly (sum's and mul's backward are
// exact), so any difference comes from f's own backward.
//
// Without a GPU every CUDA test skips with a message (ENGINE_SKIP_WITHOUT_CUDA).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/tensor.h"
#include "tests/gradcheck.h"

#define ENGINE_SKIP_WITHOUT_CUDA() \
  if (!::engine::cuda_available()) \
  GTEST_SKIP() << "no CUDA device: this test runs the CUDA backend against the CPU and needs a GPU"

namespace engine::testing {

// |gpu - cpu| <= atol + rtol |cpu|, element by element. atol = rtol = 0 asks
// for the same bits.
struct Tolerance {
  double atol = 0.0;
  double rtol = 0.0;
};

inline const Device kCuda = Device::cuda(0);

// Host copies as raw bits, for bit-for-bit comparisons (NaN-safe, -0 != +0).
inline std::vector<uint32_t> float_bits(const Tensor& t) {
  std::vector<float> values = t.to_vector();
  std::vector<uint32_t> bits(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) std::memcpy(&bits[i], &values[i], sizeof(float));
  return bits;
}

// EXPECT element-wise closeness of a CUDA tensor to a CPU one, reporting the
// first few mismatches and the worst one.
inline void expect_matches(const Tensor& gpu, const Tensor& cpu, Tolerance tol, const std::string& what) {
  ASSERT_EQ(gpu.shape(), cpu.shape()) << what;
  const std::vector<float> g = gpu.to_vector(), c = cpu.to_vector();
  int reported = 0;
  double worst = 0.0;
  std::size_t worst_index = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(g[i]) - c[i]);
    const double bound = tol.atol + tol.rtol * std::fabs(static_cast<double>(c[i]));
    const bool same_nan = std::isnan(g[i]) && std::isnan(c[i]);
    if (!same_nan && !(diff <= bound)) {
      if (diff > worst || std::isnan(diff)) {
        worst = diff;
        worst_index = i;
      }
      if (reported++ < 5)
        ADD_FAILURE() << what << ": element " << i << ": cuda " << g[i] << " vs cpu " << c[i] << " (|diff| " << diff
                      << " > " << bound << ")";
    }
  }
  if (reported > 5)
    ADD_FAILURE() << what << ": " << reported << " mismatches in total; worst at element " << worst_index << " (|diff| "
                  << worst << ")";
}

// See the top of this file. `inputs` are CPU tensors; those that require grad
// are differentiated. Returns nothing; reports failures.
inline void expect_cuda_matches_cpu(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                    const std::vector<Tensor>& inputs, Tolerance forward, Tolerance backward,
                                    const std::string& what, uint64_t weight_seed = 777) {
  std::vector<Tensor> cpu_inputs, gpu_inputs;
  for (const Tensor& t : inputs) {
    Tensor c = t.detach().clone();
    Tensor g = t.detach().to(kCuda);
    if (t.requires_grad()) {
      c.set_requires_grad();
      g.set_requires_grad();
    }
    cpu_inputs.push_back(c);
    gpu_inputs.push_back(g);
  }
  const Tensor cpu_out = f(cpu_inputs);
  const Tensor gpu_out = f(gpu_inputs);
  ASSERT_TRUE(gpu_out.device().is_cuda()) << what << ": the CUDA run produced " << gpu_out.str();
  expect_matches(gpu_out, cpu_out, forward, what + " (forward)");

  bool any_grad = false;
  for (const Tensor& t : inputs) any_grad = any_grad || t.requires_grad();
  if (!any_grad) return;
  const Tensor weights = random_tensor(cpu_out.shape(), weight_seed);
  sum(mul(cpu_out, weights)).backward();
  sum(mul(gpu_out, weights.to(kCuda))).backward();
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].requires_grad()) continue;
    const std::string name = what + " (gradient of input " + std::to_string(k) + ")";
    ASSERT_TRUE(cpu_inputs[k].grad().defined()) << name;
    ASSERT_TRUE(gpu_inputs[k].grad().defined()) << name;
    EXPECT_TRUE(gpu_inputs[k].grad().device().is_cuda()) << name;
    expect_matches(gpu_inputs[k].grad(), cpu_inputs[k].grad(), backward, name);
  }
}

// A CPU tensor of uniform values in [lo, hi) that requires grad.
inline Tensor random_leaf(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = random_tensor(shape, seed, lo, hi);
  t.set_requires_grad();
  return t;
}

// Expects `body` to throw an engine::Error whose message contains every one of `parts`.
inline void expect_error_containing(const std::function<void()>& body, const std::vector<std::string>& parts) {
  try {
    body();
    ADD_FAILURE() << "expected an engine::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "missing \"" << part << "\" in: " << message;
  }
}

}  // namespace engine::testing
