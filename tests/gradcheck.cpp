#include "tests/gradcheck.h"

#include <cmath>
#include <random>

#include "core/autograd.h"

namespace engine::testing {

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(static_cast<std::size_t>(shape_numel(shape)));
  for (float& v : values) v = dist(gen);
  return Tensor::from_vector(values, shape);
}

namespace {

double weighted_sum(const Tensor& out, const std::vector<float>& weights) {
  const std::vector<float> values = out.to_vector();
  double total = 0.0;
  for (std::size_t i = 0; i < values.size(); ++i) total += static_cast<double>(weights[i]) * values[i];
  return total;
}

}  // namespace

void expect_gradients_match(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                            const GradCheckOptions& options) {
  // Analytic gradients through autograd.
  for (Tensor& input : inputs) input.zero_grad();
  Tensor out = f(inputs);
  std::mt19937_64 gen(options.seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> weights(static_cast<std::size_t>(out.numel()));
  for (float& w : weights) w = dist(gen);
  Tensor loss = sum(mul(out, Tensor::from_vector(weights, out.shape(), out.device())));
  loss.backward();

  autograd::NoGradGuard no_grad;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    Tensor& input = inputs[k];
    if (!input.requires_grad()) continue;
    ASSERT_TRUE(input.grad().defined()) << "input " << k << " requires grad but got no gradient";
    const std::vector<float> analytic = input.grad().to_vector();
    const int64_t n = input.numel();
    const int64_t count = std::min(n, options.max_elements_per_input);
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = count == 1 ? 0 : j * (n - 1) / (count - 1);
      // Perturb element i in place on a host copy, evaluate f on each side.
      std::vector<float> values = input.to_vector();
      const float original = values[static_cast<std::size_t>(i)];
      auto evaluate_at = [&](float value) {
        values[static_cast<std::size_t>(i)] = value;
        std::vector<Tensor> perturbed = inputs;
        perturbed[k] = Tensor::from_vector(values, input.shape(), input.device());
        return weighted_sum(f(perturbed), weights);
      };
      const float plus = original + options.step;
      const float minus = original - options.step;
      const double numeric = (evaluate_at(plus) - evaluate_at(minus)) / (static_cast<double>(plus) - minus);
      const double got = analytic[static_cast<std::size_t>(i)];
      EXPECT_NEAR(got, numeric, options.atol + options.rtol * std::fabs(numeric))
          << "gradient of input " << k << " (shape " << shape_str(input.shape()) << "), element " << i;
    }
  }
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<float> va = a.to_vector(), vb = b.to_vector();
  double worst = 0.0;
  for (std::size_t i = 0; i < va.size() && i < vb.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(va[i]) - vb[i]));
  return worst;
}

void expect_close(const Tensor& actual, const std::vector<float>& expected, double atol, double rtol,
                  const char* what) {
  const std::vector<float> values = actual.to_vector();
  ASSERT_EQ(values.size(), expected.size()) << what;
  int reported = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double tol = atol + rtol * std::fabs(expected[i]);
    if (std::fabs(static_cast<double>(values[i]) - expected[i]) > tol && reported++ < 10)
      ADD_FAILURE() << what << ": element " << i << ": got " << values[i] << ", expected " << expected[i]
                    << " (tolerance " << tol << ")";
  }
}

void expect_close(const Tensor& actual, const Tensor& expected, double atol, double rtol, const char* what) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  expect_close(actual, expected.to_vector(), atol, rtol, what);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::vector<std::string> keys_of(const NamedTensors& tensors) {
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : tensors) keys.push_back(key);
  return keys;
}

}  // namespace engine::testing
