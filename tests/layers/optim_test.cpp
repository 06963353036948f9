// Adam against the torch.optim.Adam formula evaluated in double, its
// skipping, state dict and argument checks; ExponentialLR's lr sequence.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/common/adam_math.h"
#include "layers/optim.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::contains;
using testing::error_of;

// torch.optim.Adam's update (amsgrad=False), written out in double, one
// parameter vector. This is the spec the float implementation must follow.
struct ReferenceAdam {
  std::vector<double> param, m, v;
  int64_t t = 0;
  double lr, beta1, beta2, eps, weight_decay;

  void step(std::vector<double> grad) {
    t += 1;
    const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(t));
    const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(t));
    const double step_size = lr / bias_correction1;
    for (std::size_t i = 0; i < param.size(); ++i) {
      double g = grad[i] + weight_decay * param[i];
      m[i] = beta1 * m[i] + (1.0 - beta1) * g;
      v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
      const double denom = std::sqrt(v[i]) / std::sqrt(bias_correction2) + eps;
      param[i] -= step_size * m[i] / denom;
    }
  }
};

// A fixed, non-linear gradient field: g_i(p) = (p_i - c_i)^3 + 0.5 (p_i - c_i) + 0.1 i.
// Its sign and size change along the trajectory, so every part of the update matters.
const std::vector<double> kCentre{0.3, -1.2, 2.0, 0.0, -0.4, 1.1};
std::vector<double> gradient_at(const std::vector<double>& p) {
  std::vector<double> g(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double d = p[i] - kCentre[i];
    g[i] = d * d * d + 0.5 * d + 0.1 * static_cast<double>(i);
  }
  return g;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }
std::vector<float> to_float(const std::vector<double>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i]);
  return out;
}

// Runs `steps` steps of both implementations from the same start and checks
// the float trajectory against the double one after every step.
void expect_trajectory_matches(double lr, double beta1, double beta2, double eps, double weight_decay, int steps) {
  const std::vector<float> start{1.0f, 0.5f, -0.5f, 2.0f, 0.25f, -1.5f};
  Tensor p = Tensor::from_vector(start, {6});
  p.set_requires_grad();
  Adam adam({p}, lr, beta1, beta2, eps, weight_decay);
  ReferenceAdam ref{to_double(start), std::vector<double>(6, 0.0), std::vector<double>(6, 0.0), 0, lr, beta1, beta2,
                    eps, weight_decay};
  for (int step = 1; step <= steps; ++step) {
    // Each side evaluates the gradient at its own current parameters.
    p.set_grad(Tensor::from_vector(to_float(gradient_at(to_double(p.to_vector()))), {6}));
    adam.step();
    ref.step(gradient_at(ref.param));
    const std::vector<float> got = p.to_vector();
    for (std::size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], ref.param[i], 2e-6) << "step " << step << ", element " << i;
    EXPECT_EQ(adam.step_count(0), step);
  }
}

TEST(Adam, FirstStepMovesEachParameterByLrAgainstTheGradientSign) {
  // At t = 1: m = (1-b1) g, v = (1-b2) g^2, so step_size * m / denom
  // = lr/(1-b1) * (1-b1) g / (|g| sqrt(1-b2)/sqrt(1-b2) + eps) = lr g / (|g| + eps).
  Tensor p = Tensor::from_vector({1.0f, -2.0f, 3.0f}, {3});
  p.set_requires_grad();
  p.set_grad(Tensor::from_vector({0.5f, -4.0f, 1e-3f}, {3}));
  Adam adam({p}, 0.1);
  adam.step();
  testing::expect_close(p, {1.0f - 0.1f, -2.0f + 0.1f, 3.0f - 0.1f * 1e-3f / (1e-3f + 1e-8f)}, 1e-6, 1e-6);
}

TEST(Adam, TrajectoryMatchesPyTorchFormula) { expect_trajectory_matches(0.05, 0.9, 0.999, 1e-8, 0.0, 12); }

TEST(Adam, TrajectoryWithOtherBetasAndLargeEps) { expect_trajectory_matches(0.02, 0.5, 0.9, 1e-2, 0.0, 8); }

TEST(Adam, TrajectoryWithWeightDecay) {
  expect_trajectory_matches(0.05, 0.9, 0.999, 1e-8, 0.1, 10);
  // Weight decay really changes the result.
  Tensor a = Tensor::from_vector({2.0f}, {1}), b = Tensor::from_vector({2.0f}, {1});
  a.set_requires_grad();
  b.set_requires_grad();
  Adam plain({a}, 0.1), decayed({b}, 0.1, 0.9, 0.999, 1e-8, 0.5);
  for (int i = 0; i < 3; ++i) {
    a.set_grad(Tensor::from_vector({-0.1f}, {1}));
    b.set_grad(Tensor::from_vector({-0.1f}, {1}));
    plain.step();
    decayed.step();
  }
  // grad -0.1 pushes up; the decay term 0.5 * 2 = +1 dominates and pushes down.
  EXPECT_GT(a.item(), 2.0f);
  EXPECT_LT(b.item(), 2.0f);
}

TEST(Adam, WorksWithGradientsFromBackward) {
  // loss = sum((p - c)^2): gradient 2 (p - c), through autograd.
  const std::vector<float> start{0.5f, -1.0f, 2.0f};
  const Tensor centre = Tensor::from_vector({1.0f, 1.0f, -1.0f}, {3});
  Tensor p = Tensor::from_vector(start, {3});
  p.set_requires_grad();
  Adam adam({p}, 0.1);
  ReferenceAdam ref{to_double(start), std::vector<double>(3, 0.0), std::vector<double>(3, 0.0), 0, 0.1, 0.9, 0.999,
                    1e-8, 0.0};
  for (int step = 0; step < 6; ++step) {
    adam.zero_grad();
    const Tensor d = p - centre;
    sum(d * d).backward();
    adam.step();
    std::vector<double> g(3);
    for (int i = 0; i < 3; ++i) g[i] = 2.0 * (ref.param[i] - centre.to_vector()[i]);
    ref.step(g);
  }
  const std::vector<float> got = p.to_vector();
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(got[i], ref.param[i], 2e-6) << i;
  // The update is not recorded: p is still a leaf that requires grad.
  EXPECT_TRUE(p.is_leaf());
  EXPECT_TRUE(p.requires_grad());
}

TEST(Adam, SkipsParametersWithoutGradientAndKeepsPerParameterStepCounts) {
  Tensor a = Tensor::from_vector({1.0f, 1.0f}, {2}), b = Tensor::from_vector({5.0f}, {1});
  a.set_requires_grad();
  b.set_requires_grad();
  Adam adam({a, b}, 0.1);
  a.set_grad(Tensor::from_vector({1.0f, -1.0f}, {2}));
  adam.step();
  adam.step();
  EXPECT_EQ(b.to_vector(), std::vector<float>{5.0f});  // untouched
  EXPECT_EQ(adam.step_count(0), 2);
  EXPECT_EQ(adam.step_count(1), 0);
  EXPECT_EQ(adam.state_dict().size(), 3u);  // only a has state

  // b's first update is its own step 1 (bias corrections from t = 1), as PyTorch's per-parameter step.
  a.zero_grad();
  b.set_grad(Tensor::from_vector({2.0f}, {1}));
  const std::vector<float> a_before = a.to_vector();
  adam.step();
  EXPECT_EQ(a.to_vector(), a_before);
  EXPECT_NEAR(b.item(), 5.0f - 0.1f, 1e-6f);
  EXPECT_EQ(adam.step_count(0), 2);
  EXPECT_EQ(adam.step_count(1), 1);
}

TEST(Adam, ZeroGradAndLearningRate) {
  Tensor p = Tensor::from_vector({1.0f}, {1});
  p.set_requires_grad();
  Adam adam({p}, 0.1);
  p.set_grad(Tensor::from_vector({1.0f}, {1}));
  adam.zero_grad();
  EXPECT_FALSE(p.grad().defined());
  EXPECT_DOUBLE_EQ(adam.lr(), 0.1);
  adam.set_lr(0.0);
  p.set_grad(Tensor::from_vector({1.0f}, {1}));
  adam.step();
  EXPECT_EQ(p.item(), 1.0f);  // lr 0: no movement, but the moments advanced
  EXPECT_EQ(adam.step_count(0), 1);
  EXPECT_TRUE(contains(error_of([&] { adam.set_lr(-1.0); }), "invalid learning rate -1"));
}

TEST(Adam, RejectsBadArguments) {
  Tensor p = Tensor::zeros({2});
  EXPECT_TRUE(contains(error_of([&] { Adam({p}); }), "parameter 0 must be a leaf that requires grad"));
  p.set_requires_grad();
  EXPECT_TRUE(contains(error_of([&] { Adam({p, p}); }), "parameter 1 appears twice"));
  EXPECT_TRUE(contains(error_of([&] { Adam({p}, -1e-3); }), "invalid learning rate"));
  EXPECT_TRUE(contains(error_of([&] { Adam({p}, 1e-3, 1.0); }), "invalid beta1 1"));
  EXPECT_TRUE(contains(error_of([&] { Adam({p}, 1e-3, 0.9, -0.1); }), "invalid beta2 -0.1"));
  EXPECT_TRUE(contains(error_of([&] { Adam({p}, 1e-3, 0.9, 0.999, -1.0); }), "invalid eps"));
  EXPECT_TRUE(contains(error_of([&] { Adam({p}, 1e-3, 0.9, 0.999, 1e-8, -0.5); }), "invalid weight_decay"));
  EXPECT_TRUE(contains(error_of([&] { Adam({Tensor()}); }), "parameter 0 is an undefined Tensor"));
}

TEST(Adam, StateDictResumesBitIdentically) {
  const std::vector<float> start{0.1f, 0.7f, -0.3f, 1.5f, -2.0f, 0.9f};
  auto grad_of = [](const Tensor& p) { return Tensor::from_vector(to_float(gradient_at(to_double(p.to_vector()))), {6}); };
  auto take_steps = [&](Tensor& p, Adam& adam, int steps) {
    for (int i = 0; i < steps; ++i) {
      p.set_grad(grad_of(p));
      adam.step();
    }
  };

  // Run A: 7 steps straight.
  Tensor a = Tensor::from_vector(start, {6});
  a.set_requires_grad();
  Adam adam_a({a}, 0.05);
  take_steps(a, adam_a, 7);
  // Run B: 4 steps, checkpoint (parameter + optimiser state), resume in a new optimiser, 3 more.
  Tensor b = Tensor::from_vector(start, {6});
  b.set_requires_grad();
  Adam adam_b({b}, 0.05);
  take_steps(b, adam_b, 4);
  const NamedTensors saved = adam_b.state_dict();
  ASSERT_EQ(saved.size(), 3u);
  EXPECT_EQ(saved[0].first, "state.0.step");
  EXPECT_EQ(saved[1].first, "state.0.exp_avg");
  EXPECT_EQ(saved[2].first, "state.0.exp_avg_sq");
  EXPECT_EQ(saved[0].second.to_vector_i64(), std::vector<int64_t>{4});
  NamedTensors copied;  // as if read back from a file
  for (const auto& [key, t] : saved) copied.emplace_back(key, t.clone());
  Tensor resumed = b.detach().clone();
  resumed.set_requires_grad();
  Adam adam_c({resumed}, 0.05);
  adam_c.load_state_dict(copied);
  EXPECT_EQ(adam_c.step_count(0), 4);
  take_steps(resumed, adam_c, 3);
  EXPECT_EQ(resumed.to_vector(), a.to_vector());
}

TEST(Adam, LoadStateDictRejectsBadStateAndChangesNothing) {
  Tensor p = Tensor::zeros({3});
  p.set_requires_grad();
  Adam adam({p});
  p.set_grad(Tensor::ones({3}));
  adam.step();
  const NamedTensors good = adam.state_dict();

  NamedTensors wrong_shape = good;
  wrong_shape[1].second = Tensor::zeros({4});
  std::string msg = error_of([&] { adam.load_state_dict(wrong_shape); });
  EXPECT_TRUE(contains(msg, "state.0.exp_avg")) << msg;
  EXPECT_TRUE(contains(msg, "[3]")) << msg;
  EXPECT_TRUE(contains(msg, "[4]")) << msg;

  NamedTensors out_of_range{{"state.5.step", Tensor::from_vector_i64({1}, {})}};
  msg = error_of([&] { adam.load_state_dict(out_of_range); });
  EXPECT_TRUE(contains(msg, "names parameter 5 but the optimiser has 1")) << msg;

  msg = error_of([&] { adam.load_state_dict({{"lr", Tensor::scalar(1.0f)}}); });
  EXPECT_TRUE(contains(msg, "unexpected key \"lr\"")) << msg;

  msg = error_of([&] { adam.load_state_dict({good[0], good[1]}); });
  EXPECT_TRUE(contains(msg, "needs all of state.0.step, .exp_avg and .exp_avg_sq")) << msg;

  EXPECT_EQ(adam.step_count(0), 1);  // unchanged by the failed loads
  // An empty state dict resets the optimiser.
  adam.load_state_dict({});
  EXPECT_EQ(adam.step_count(0), 0);
}

TEST(AdamMath, OneElementByHand) {
  // t = 2 from m = 0.1, v = 0.001 (b1 0.9, b2 0.999), g = 0.5, lr 0.01.
  AdamStepConstants c{0.9f, 0.1f, 0.999f, 0.001f, static_cast<float>(0.01 / (1 - 0.81)),
                      static_cast<float>(std::sqrt(1 - 0.999 * 0.999)), 1e-8f, 0.0f};
  float param = 1.0f, m = 0.1f, v = 0.001f;
  adam_update(param, 0.5f, m, v, c);
  const double m_ref = 0.9 * 0.1 + 0.1 * 0.5, v_ref = 0.999 * 0.001 + 0.001 * 0.25;
  const double p_ref = 1.0 - 0.01 / (1 - 0.81) * m_ref / (std::sqrt(v_ref) / std::sqrt(1 - 0.999 * 0.999) + 1e-8);
  EXPECT_NEAR(m, m_ref, 1e-7);
  EXPECT_NEAR(v, v_ref, 1e-9);
  EXPECT_NEAR(param, p_ref, 1e-6);
}

// --- ExponentialLR ---------------------------------------------------------------------------------

TEST(ExponentialLR, LearningRateSequence) {
  Tensor p = Tensor::zeros({1});
  p.set_requires_grad();
  Adam adam({p}, 1e-3);
  ExponentialLR schedule(adam, 0.1);
  EXPECT_EQ(schedule.last_epoch(), 0);
  EXPECT_DOUBLE_EQ(adam.lr(), 1e-3);  // construction leaves epoch 0's lr
  double product = 1e-3;
  for (int epoch = 1; epoch <= 6; ++epoch) {
    schedule.step();
    product *= 0.1;
    EXPECT_EQ(schedule.last_epoch(), epoch);
    EXPECT_EQ(adam.lr(), product) << "epoch " << epoch;  // PyTorch's multiplicative form, bit for bit
    EXPECT_NEAR(adam.lr(), 1e-3 * std::pow(0.1, epoch), 1e-15 * std::pow(0.1, epoch)) << "epoch " << epoch;
  }
  // Resume: set_last_epoch gives the same lr as stepping there.
  Adam other({p}, 1e-3);
  ExponentialLR resumed(other, 0.1);
  resumed.set_last_epoch(6);
  EXPECT_EQ(resumed.last_epoch(), 6);
  EXPECT_EQ(other.lr(), adam.lr());
  EXPECT_TRUE(contains(error_of([&] { ExponentialLR(adam, 0.0); }), "gamma must be positive"));
}

TEST(ExponentialLR, TheOptimiserUsesTheDecayedRate) {
  // gamma 0.5 twice: lr 0.1 -> 0.025; a first Adam step then moves by ~0.025.
  Tensor p = Tensor::from_vector({1.0f}, {1});
  p.set_requires_grad();
  Adam adam({p}, 0.1);
  ExponentialLR schedule(adam, 0.5);
  schedule.step();
  schedule.step();
  p.set_grad(Tensor::from_vector({3.0f}, {1}));
  adam.step();
  EXPECT_NEAR(p.item(), 1.0f - 0.025f, 1e-6f);
}

}  // namespace
}  // namespace engine
