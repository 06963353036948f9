// Test utilities shared by the op and layer tests: random inputs, the
// central-finite-difference gradient checker, and checks of error messages
// and state-dict names.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <typeinfo>
#include <vector>

#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "core/tensor.h"

namespace engine::testing {

// Values uniform in [lo, hi) from std::mt19937_64(seed): a source of test
// data that is independent of the engine's own RNG.
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

struct GradCheckOptions {
  // Step of the central difference (f(x+h) - f(x-h)) / 2h. In float32 the
  // rounding error of f is ~1e-7 |f|, divided by 2h; 1e-2 balances it against
  // the O(h^2) truncation error of smooth ops (exact for ops linear in x).
  float step = 1e-2f;
  double atol = 2e-3;
  double rtol = 2e-2;
  // Elements checked per input, spread evenly (first and last included).
  int64_t max_elements_per_input = 48;
  uint64_t seed = 12345;
};

// For every input that requires grad, compares the autograd gradient of
//   L(inputs) = sum_i w_i * f(inputs)_i      (w fixed, uniform in [-1, 1))
// with central differences of L, evaluated in double from f's float32
// outputs. Reports each mismatch as a test failure naming input and element.
void expect_gradients_match(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            std::vector<Tensor> inputs, const GradCheckOptions& options = {});

// Max |a - b| over all elements; shapes must agree.
double max_abs_diff(const Tensor& a, const Tensor& b);

// EXPECT that every element satisfies |actual - expected| <= atol + rtol |expected|.
void expect_close(const Tensor& actual, const std::vector<float>& expected, double atol, double rtol,
                  const char* what = "");
void expect_close(const Tensor& actual, const Tensor& expected, double atol, double rtol, const char* what = "");

// The message of the exception of type `Exception` (engine::Error by
// default) that `f()` throws; "" and a test failure when it throws none.
//   EXPECT_TRUE(contains(error_of([] { Conv2d(0, 4, 3); }), "in_channels must be positive"));
template <typename Exception = Error, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Exception& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected an exception of type " << typeid(Exception).name();
  return "";
}

// Whether `part` occurs in `text`.
bool contains(const std::string& text, const std::string& part);

// The names of a state dict (or any named tensors), in order.
std::vector<std::string> keys_of(const NamedTensors& tensors);

}  // namespace engine::testing
