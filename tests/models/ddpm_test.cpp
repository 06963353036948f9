// DDPM: the schedule against its closed forms, the forward process of a
// training batch, the p_uncond dropout rate, one reverse step against a hand
// computation, classifier-free guidance at gamma = 0 and 1, the sampler's
// determinism and draw order, and the argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/autograd.h"
#include "core/ops.h"
#include "models/ddpm.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

// Runs `body`, which must throw an engine::Error whose message contains every
// one of `fragments`.
template <typename Body>
void expect_error_containing(Body body, std::initializer_list<const char*> fragments) {
  try {
    body();
    ADD_FAILURE() << "expected an engine::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const char* fragment : fragments)
      EXPECT_NE(message.find(fragment), std::string::npos) << "message '" << message << "' lacks '" << fragment << "'";
  }
}

std::vector<float> values_of(const Tensor& t) { return t.to_vector(); }

TEST(DdpmSchedule, ArraysMatchTheirClosedForms) {
  const DdpmSchedule s;  // T = 300, betas 1e-4 .. 0.02
  ASSERT_EQ(s.num_steps(), 300);
  ASSERT_EQ(s.betas().size(), 301u);
  // Index 0: no noise.
  EXPECT_EQ(s.beta(0), 0.0);
  EXPECT_EQ(s.alpha(0), 1.0);
  EXPECT_EQ(s.alpha_bar(0), 1.0);
  // The ends of the linspace sit at t = 1 and t = T.
  EXPECT_DOUBLE_EQ(s.beta(1), 1e-4);
  EXPECT_DOUBLE_EQ(s.beta(300), 0.02);
  double log_alpha_bar = 0.0;
  for (int64_t t = 1; t <= 300; ++t) {
    const double beta = 1e-4 + static_cast<double>(t - 1) * (0.02 - 1e-4) / 299.0;
    EXPECT_NEAR(s.beta(t), beta, 1e-15) << "t=" << t;
    EXPECT_NEAR(s.alpha(t), 1.0 - beta, 1e-15) << "t=" << t;
    // alpha_bar_t = exp(sum_{s<=t} log(1 - beta_s)): the product by another road.
    log_alpha_bar += std::log1p(-beta);
    EXPECT_NEAR(s.alpha_bar(t), std::exp(log_alpha_bar), 1e-12) << "t=" << t;
    EXPECT_LT(s.alpha_bar(t), s.alpha_bar(t - 1)) << "alpha_bar must decrease, t=" << t;
  }
  // The product of 300 factors in [0.98, 0.9999] ends near exp(-sum beta) = exp(-3.015) ~ 0.047.
  EXPECT_GT(s.alpha_bar(300), 0.04);
  EXPECT_LT(s.alpha_bar(300), 0.05);

  // T = 1 is torch.linspace(start, end, 1) = [start].
  const DdpmSchedule one(1, 0.3, 0.5);
  EXPECT_EQ(one.beta(1), 0.3);
  EXPECT_DOUBLE_EQ(one.alpha_bar(1), 0.7);
  // A hand-sized schedule: betas 0.1, 0.2, 0.3.
  const DdpmSchedule three(3, 0.1, 0.3);
  EXPECT_DOUBLE_EQ(three.beta(2), 0.2);
  EXPECT_DOUBLE_EQ(three.alpha_bar(3), 0.9 * 0.8 * 0.7);
}

TEST(DdpmSchedule, RejectsValuesThatBreakAlphaBar) {
  expect_error_containing([] { DdpmSchedule(0); }, {"num_steps", "1..100000", "got 0"});
  expect_error_containing([] { DdpmSchedule(-5); }, {"num_steps", "got -5"});
  expect_error_containing([] { DdpmSchedule(200000); }, {"num_steps", "got 200000"});
  expect_error_containing([] { DdpmSchedule(300, 0.0, 0.02); }, {"beta_start", "0 < beta_start < 1", "got 0"});
  expect_error_containing([] { DdpmSchedule(300, 1e-4, 1.0); }, {"beta_end", "0 < beta_end < 1", "got 1"});
  expect_error_containing([] { DdpmSchedule(300, 1e-4, 1.5); }, {"beta_end", "got 1.5"});
  expect_error_containing([] { DdpmSchedule(300, -0.1, 0.02); }, {"beta_start", "got -0.1"});
  expect_error_containing([] { DdpmSchedule(300, std::nan(""), 0.02); }, {"beta_start"});
  // Valid betas, but the product underflows: 100000 factors of 0.5.
  expect_error_containing([] { DdpmSchedule(100000, 0.5, 0.5); }, {"alpha_bar_T", "T=100000", "fewer steps"});
  // A step outside 0..T.
  const DdpmSchedule s(10);
  expect_error_containing([&] { (void)s.alpha_bar(11); }, {"alpha_bar", "0..10", "got 11"});
  expect_error_containing([&] { (void)s.beta(-1); }, {"beta", "got -1"});
}

TEST(DdpmTraining, BatchFollowsTheForwardProcess) {
  const DdpmSchedule s(20);
  const int64_t N = 6;
  const Tensor x0 = testing::random_tensor({N, 1, 28, 28}, 7, 0.0f, 1.0f);
  const std::vector<int64_t> labels = {0, 1, 2, 3, 8, 9};
  Generator gen(42);
  const DdpmTrainingBatch b = make_ddpm_training_batch(s, x0, labels, 0.5, gen);
  ASSERT_EQ(b.x_t.shape(), (Shape{N, 1, 28, 28}));
  ASSERT_EQ(b.noise.shape(), (Shape{N, 1, 28, 28}));
  ASSERT_EQ(b.t_input.shape(), (Shape{N, 1}));
  ASSERT_EQ(b.class_input.shape(), (Shape{N, 10}));
  ASSERT_EQ(b.steps.size(), static_cast<size_t>(N));
  ASSERT_EQ(b.dropped.size(), static_cast<size_t>(N));
  EXPECT_FALSE(b.x_t.requires_grad());

  const auto x0v = values_of(x0), xtv = values_of(b.x_t), epsv = values_of(b.noise), tv = values_of(b.t_input);
  const auto cv = values_of(b.class_input);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t t = b.steps[n];
    ASSERT_GE(t, 1);
    ASSERT_LE(t, 20);
    EXPECT_FLOAT_EQ(tv[n], static_cast<float>(t) / 20.0f);
    const double a = std::sqrt(s.alpha_bar(t)), sigma = std::sqrt(1.0 - s.alpha_bar(t));
    for (int64_t i = 0; i < 784; ++i) {
      const size_t k = static_cast<size_t>(n * 784 + i);
      ASSERT_NEAR(xtv[k], a * x0v[k] + sigma * epsv[k], 1e-5) << "n=" << n << " i=" << i;
    }
    for (int64_t j = 0; j < 10; ++j) {
      const float expected = (!b.dropped[n] && j == labels[n]) ? 1.0f : 0.0f;
      EXPECT_EQ(cv[static_cast<size_t>(n * 10 + j)], expected) << "n=" << n << " j=" << j;
    }
  }

  // The same generator state gives the same batch, bit for bit.
  Generator again(42);
  const DdpmTrainingBatch b2 = make_ddpm_training_batch(s, x0, labels, 0.5, again);
  EXPECT_EQ(b2.steps, b.steps);
  EXPECT_EQ(b2.dropped, b.dropped);
  EXPECT_EQ(values_of(b2.x_t), xtv);
  EXPECT_EQ(gen.offset(), again.offset());

  // Without labels (time model) there is no class input.
  Generator g3(1);
  const DdpmTrainingBatch time_batch = make_ddpm_training_batch(s, x0, {}, 0.1, g3);
  EXPECT_FALSE(time_batch.class_input.defined());
  EXPECT_TRUE(time_batch.dropped.empty());
}

TEST(DdpmTraining, TimestepsAreUniformOverOneToT) {
  const DdpmSchedule s(4);
  const int64_t N = 8000;
  Generator gen(3);
  const DdpmTrainingBatch b = make_ddpm_training_batch(s, Tensor::zeros({N, 1, 2, 2}), {}, 0.0, gen);
  std::vector<int64_t> count(5, 0);
  for (int64_t t : b.steps) {
    ASSERT_GE(t, 1);
    ASSERT_LE(t, 4);
    ++count[static_cast<size_t>(t)];
  }
  // Each of 1..4 expected 2000 times; binomial std ~ 39, so +-200 is ~5 sigma.
  for (int64_t t = 1; t <= 4; ++t) EXPECT_NEAR(count[t], 2000, 200) << "t=" << t;
}

TEST(DdpmTraining, ClassDropoutRateIsPUncond) {
  const DdpmSchedule s(10);
  const int64_t N = 20000;
  std::vector<int64_t> labels(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) labels[n] = n % 10;
  const Tensor x0 = Tensor::zeros({N, 1, 1, 1});
  for (double p : {0.0, 0.1, 0.5, 1.0}) {
    Generator gen(11);
    const DdpmTrainingBatch b = make_ddpm_training_batch(s, x0, labels, p, gen);
    int64_t dropped = 0;
    for (bool d : b.dropped) dropped += d ? 1 : 0;
    const double rate = static_cast<double>(dropped) / static_cast<double>(N);
    // Binomial std at p = 0.1: sqrt(0.09 / 20000) = 0.0021; 0.01 is ~5 sigma.
    EXPECT_NEAR(rate, p, 0.01) << "p_uncond=" << p;
    if (p == 0.0) { EXPECT_EQ(dropped, 0); }
    if (p == 1.0) { EXPECT_EQ(dropped, N); }
    // A dropped row of the class input is all zeros, a kept one sums to 1.
    const auto c = values_of(b.class_input);
    for (int64_t n = 0; n < N; n += 97) {
      float row = 0.0f;
      for (int64_t j = 0; j < 10; ++j) row += c[static_cast<size_t>(n * 10 + j)];
      EXPECT_EQ(row, b.dropped[n] ? 0.0f : 1.0f) << "n=" << n;
    }
  }
}

TEST(DdpmTraining, RejectsBadArguments) {
  const DdpmSchedule s(10);
  Generator gen(0);
  const Tensor x0 = Tensor::zeros({2, 1, 28, 28});
  expect_error_containing([&] { make_ddpm_training_batch(s, x0, {1}, 0.1, gen); }, {"labels", "(2)", "got 1"});
  expect_error_containing([&] { make_ddpm_training_batch(s, x0, {1, 10}, 0.1, gen); }, {"label 1", "0..9", "got 10"});
  expect_error_containing([&] { make_ddpm_training_batch(s, x0, {1, 2}, 1.5, gen); }, {"p_uncond", "[0, 1]", "1.5"});
  expect_error_containing([&] { make_ddpm_training_batch(s, Tensor::zeros({2, 28, 28}), {}, 0.1, gen); },
                          {"x0", "[N, C, H, W]"});
}

TEST(DdpmSampling, ReverseStepMatchesAHandComputation) {
  // Schedule betas 0.1, 0.2, 0.3: at t = 2, beta = 0.2, alpha = 0.8,
  // alpha_bar_2 = 0.72, alpha_bar_1 = 0.9.
  const DdpmSchedule s(3, 0.1, 0.3);
  const Tensor x = Tensor::from_vector({0.5f, -1.0f}, {1, 1, 1, 2});
  const Tensor eps = Tensor::from_vector({0.2f, 0.4f}, {1, 1, 1, 2});
  const Tensor z = Tensor::from_vector({1.0f, -0.5f}, {1, 1, 1, 2});
  // x0_hat = (x - sqrt(0.28) eps) / sqrt(0.72)         = [0.464534, -1.427955]
  // x_1    = sqrt(0.9) 0.2 / 0.28 x0_hat                 (0.677631 x0_hat)
  //        + sqrt(0.8) (1 - 0.9) / 0.28 x                (0.319438 x)
  //        + sqrt(0.2) z                                 (0.447214 z)
  //        = [0.921715, -1.510672]
  testing::expect_close(ddpm_reverse_step(s, x, eps, 2, z), {0.9217152f, -1.5106716f}, 1e-6, 1e-6, "t=2");
  // Without z: the mean alone.
  testing::expect_close(ddpm_reverse_step(s, x, eps, 2, Tensor()),
                        {0.9217152f - 0.4472136f, -1.5106716f + 0.5f * 0.4472136f}, 1e-6, 1e-6, "t=2, z=0");
  // The last step (t = 1, alpha_bar_0 = 1) lands exactly on x0_hat:
  // (x - sqrt(0.1) eps) / sqrt(0.9) = [0.460380, -1.187426].
  testing::expect_close(ddpm_reverse_step(s, x, eps, 1, Tensor()), {0.4603796f, -1.1874259f}, 1e-6, 1e-6, "t=1");

  expect_error_containing([&] { ddpm_reverse_step(s, x, eps, 0, z); }, {"ddpm_reverse_step", "'t'", "1..3", "got 0"});
  expect_error_containing([&] { ddpm_reverse_step(s, x, eps, 4, z); }, {"got 4"});
  expect_error_containing([&] { ddpm_reverse_step(s, x, Tensor::zeros({1, 1, 2, 1}), 2, z); }, {"eps", "[1, 1, 2, 1]"});
}

// A small UNet (D = 4) whose BatchNorm running statistics have been fitted
// to its activations by training-mode forwards (0.9^40 ~ 1.5% of the initial
// 0 / 1 left), so that eval mode normalises as it would after training. A
// fresh network in eval mode shrinks every signal layer by layer and its
// output hardly depends on its inputs, which would make the checks below
// vacuous. With `strong_class`, the class embeddings' last linear layers get
// large weights so that the class visibly changes the prediction.
std::shared_ptr<UNet> small_unet(UNetConditioning mode, uint64_t seed, bool strong_class = false) {
  Generator gen(seed);
  auto net = std::make_shared<UNet>(4, mode, gen);
  if (strong_class)
    for (auto& [name, tensor] : net->named_parameters())
      if (name.rfind("fc1_c.2.", 0) == 0 || name.rfind("fc2_c.2.", 0) == 0)
        tensor.copy_(testing::random_tensor(tensor.shape(), seed + 2, -3.0f, 3.0f));
  autograd::NoGradGuard no_grad;
  const int64_t N = 4;
  const Tensor x = testing::random_tensor({N, 1, 28, 28}, seed + 1, -1.0f, 1.0f);
  const Tensor t = Tensor::full({N, 1}, 0.5f);
  const Tensor c = mode == UNetConditioning::time_and_class ? class_one_hot({1, 2, 3, 4}, {}, Device::cpu()) : Tensor();
  for (int pass = 0; pass < 40; ++pass) (void)net->forward(x, t, c);
  return net;
}

TEST(DdpmSampling, GuidanceScaleOneIsConditionalAndZeroIsUnconditional) {
  auto net = small_unet(UNetConditioning::time_and_class, 5, /*strong_class=*/true);
  net->eval();
  const DdpmSchedule s(10);
  const int64_t N = 3, t = 7;
  const std::vector<int64_t> labels = {3, 0, 9};
  const Tensor x = testing::random_tensor({N, 1, 28, 28}, 9, -1.0f, 1.0f);

  autograd::NoGradGuard no_grad;
  const Tensor t_in = Tensor::full({N, 1}, 0.7f);
  const Tensor eps_c = net->forward(x, t_in, class_one_hot(labels, {}, Device::cpu()));
  const Tensor eps_u = net->forward(x, t_in, Tensor::zeros({N, 10}));
  // The two predictions must differ, or the checks below prove nothing.
  ASSERT_GT(testing::max_abs_diff(eps_c, eps_u), 0.05);

  testing::expect_close(ddpm_predict_noise(*net, s, x, t, labels, 1.0), eps_c, 1e-5, 1e-4, "gamma=1");
  testing::expect_close(ddpm_predict_noise(*net, s, x, t, labels, 0.0), eps_u, 1e-5, 1e-4, "gamma=0");
  // gamma = 5: eps_u + 5 (eps_c - eps_u), from the two separate passes.
  const Tensor expected = eps_u + (eps_c - eps_u) * 5.0f;
  testing::expect_close(ddpm_predict_noise(*net, s, x, t, labels, 5.0), expected, 1e-4, 1e-4, "gamma=5");

  // The time model: just eps_theta(x, t/T).
  auto time_net = small_unet(UNetConditioning::time, 6);
  time_net->eval();
  testing::expect_close(ddpm_predict_noise(*time_net, s, x, t, {}, 5.0), time_net->forward(x, t_in, Tensor()), 1e-6,
                        1e-6, "time model");
}

TEST(DdpmSampling, EvalModeSamplingIsDeterministicForASeedAndFollowsTheDrawOrder) {
  auto net = small_unet(UNetConditioning::time_and_class, 2);
  const NamedTensors before = net->state_dict();
  std::vector<std::vector<float>> state_before;
  for (const auto& [name, tensor] : before)
    if (tensor.dtype() == DType::F32) state_before.push_back(tensor.to_vector());
  const DdpmSchedule s(6);
  DdpmSampleOptions options;
  options.labels = {7, 1, 4};
  options.guidance_scale = 3.0;
  std::vector<int64_t> steps_seen;
  Tensor last_frame;
  options.on_step = [&](int64_t step, const Tensor& x) {
    steps_seen.push_back(step);
    last_frame = x;
  };

  ASSERT_TRUE(net->is_training());
  Generator gen_a(123);
  const Tensor a = ddpm_sample(*net, s, options, gen_a);
  EXPECT_TRUE(net->is_training()) << "the sampler must restore the model's mode";
  ASSERT_EQ(a.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(steps_seen, (std::vector<int64_t>{6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(values_of(last_frame), values_of(a));

  // Eval mode: the running statistics did not move.
  size_t i = 0;
  for (const auto& [name, tensor] : net->state_dict())
    if (tensor.dtype() == DType::F32) {
      EXPECT_EQ(tensor.to_vector(), state_before[i++]) << name;
    }

  // Same seed, same bits; another seed, other samples.
  Generator gen_b(123);
  options.on_step = nullptr;
  EXPECT_EQ(values_of(ddpm_sample(*net, s, options, gen_b)), values_of(a));
  Generator gen_c(124);
  EXPECT_GT(testing::max_abs_diff(ddpm_sample(*net, s, options, gen_c), a), 1e-2);

  // The documented draw order, replayed by hand: x_T, then z for t = T..2.
  net->eval();
  Generator gen_d(123);
  autograd::NoGradGuard no_grad;
  Tensor x = randn({3, 1, 28, 28}, gen_d);
  for (int64_t t = 6; t >= 1; --t) {
    const Tensor eps = ddpm_predict_noise(*net, s, x, t, options.labels, 3.0);
    const Tensor z = t > 1 ? randn({3, 1, 28, 28}, gen_d) : Tensor();
    x = ddpm_reverse_step(s, x, eps, t, z);
  }
  EXPECT_EQ(values_of(x), values_of(a));
  EXPECT_EQ(gen_d.offset(), gen_a.offset());
}

TEST(DdpmSampling, TimeModelSamples) {
  auto net = small_unet(UNetConditioning::time, 4);
  const DdpmSchedule s(3);
  DdpmSampleOptions options;
  options.num_samples = 2;
  Generator gen(1);
  const Tensor a = ddpm_sample(*net, s, options, gen);
  EXPECT_EQ(a.shape(), (Shape{2, 1, 28, 28}));
  for (float v : values_of(a)) ASSERT_TRUE(std::isfinite(v));
}

TEST(DdpmSampling, RejectsBadArguments) {
  auto class_net = small_unet(UNetConditioning::time_and_class, 1);
  auto time_net = small_unet(UNetConditioning::time, 1);
  Generator gen_init(0);
  UNet plain(4, UNetConditioning::none, gen_init);
  const DdpmSchedule s(3);
  Generator gen(0);
  DdpmSampleOptions options;
  options.labels = {1, 2};
  options.guidance_scale = -1.0;
  expect_error_containing([&] { ddpm_sample(*class_net, s, options, gen); }, {"guidance_scale", "[0, 100]", "got -1"});
  options.guidance_scale = std::nan("");
  expect_error_containing([&] { ddpm_sample(*class_net, s, options, gen); }, {"guidance_scale"});
  options.guidance_scale = 5.0;
  options.labels = {1, 10};
  expect_error_containing([&] { ddpm_sample(*class_net, s, options, gen); }, {"digit 1", "0..9", "got 10"});
  options.labels = {1, 2};
  options.num_samples = 3;
  expect_error_containing([&] { ddpm_sample(*class_net, s, options, gen); }, {"expected 3 labels", "got 2"});
  expect_error_containing([&] { ddpm_sample(*time_net, s, options, gen); }, {"takes no class labels"});
  options.labels.clear();
  options.num_samples = 0;
  expect_error_containing([&] { ddpm_sample(*time_net, s, options, gen); }, {"num_samples", "got 0"});
  expect_error_containing([&] { ddpm_sample(*class_net, s, options, gen); }, {"num_samples", "got 0"});
  options.num_samples = 1;
  expect_error_containing([&] { ddpm_sample(plain, s, options, gen); }, {"time-conditioned"});
  // Nothing was drawn by a rejected call.
  EXPECT_EQ(gen.offset(), 0u);
}

}  // namespace
}  // namespace engine
