// The DDPM of models/ddpm.h against the PyTorch reference
// (tests/data/golden/ddpm.safetensors, tools/parity/make_golden.py):
//   * the schedule (T = 300, betas linear in [1e-4, 0.02], index 0 = no noise);
//   * the forward process of make_ddpm_training_batch, with PyTorch's
//     alpha_bar_t;
//   * the sampler: its last 20 reverse steps (t = 20 .. 1) from a stored x_20
//     with stored noise z, for the time model and for the class model with
//     classifier-free guidance 5 (one forward of 2N), through
//     ddpm_predict_noise and ddpm_reverse_step, the two functions ddpm_sample
//     is made of. The models are PyTorch's, with moved BatchNorm running stats.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "models/ddpm.h"
#include "tests/gradcheck.h"
#include "tests/parity/golden.h"

namespace engine {
namespace {

using parity::GoldenFile;

const GoldenFile& ddpm_golden() {
  static const GoldenFile golden("ddpm.safetensors");
  return golden;
}

TEST(DdpmParity, ScheduleIsPyTorchs) {
  // PyTorch computes the arrays in float64; the file holds them rounded to
  // float32. The engine's float64 values must round to within one float32
  // rounding of them: |engine - golden| <= 2^-24 |golden| (+1e-30 for 0).
  const GoldenFile& g = ddpm_golden();
  const DdpmSchedule schedule;
  ASSERT_EQ(schedule.num_steps(), 300);
  const struct {
    const char* name;
    const std::vector<double>& values;
  } arrays[] = {{"schedule.betas", schedule.betas()},
                {"schedule.alphas", schedule.alphas()},
                {"schedule.alpha_bars", schedule.alpha_bars()}};
  for (const auto& array : arrays) {
    const std::vector<float> expected = g.get(array.name).to_vector();
    ASSERT_EQ(array.values.size(), expected.size()) << array.name << ": T + 1 entries, index 0 = no noise";
    for (size_t t = 0; t < expected.size(); ++t)
      EXPECT_NEAR(array.values[t], expected[t], std::ldexp(std::fabs(expected[t]), -24) + 1e-30)
          << array.name << "[" << t << "]";
  }
}

TEST(DdpmParity, TrainingBatchNoisesWithPyTorchsAlphaBar) {
  // x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps for the t and eps
  // the engine drew, with PyTorch's alpha_bar_t. Two roundings of products
  // and one of the sum: within 4 ulps of max |x_t| (< 5 for these inputs).
  const std::vector<float> alpha_bars = ddpm_golden().get("schedule.alpha_bars").to_vector();
  const DdpmSchedule schedule;
  Generator gen(5);
  const Tensor x0 = testing::random_tensor({6, 1, 28, 28}, 6, 0.0f, 1.0f);
  const DdpmTrainingBatch batch = make_ddpm_training_batch(schedule, x0, {}, 0.0, gen);
  const std::vector<float> x = x0.to_vector(), eps = batch.noise.to_vector(), xt = batch.x_t.to_vector();
  const std::vector<float> t_input = batch.t_input.to_vector();
  const size_t per_image = 28 * 28;
  for (size_t n = 0; n < 6; ++n) {
    const int64_t t = batch.steps[n];
    ASSERT_GE(t, 1);
    ASSERT_LE(t, 300);
    EXPECT_FLOAT_EQ(t_input[n], static_cast<float>(t / 300.0));
    const double a = std::sqrt(static_cast<double>(alpha_bars[t]));
    const double b = std::sqrt(1.0 - static_cast<double>(alpha_bars[t]));
    for (size_t i = n * per_image; i < (n + 1) * per_image; ++i)
      ASSERT_NEAR(xt[i], a * x[i] + b * eps[i], 4 * 6e-8 * 5.0) << "image " << n << " t " << t << " element " << i;
  }
}

// Element k of the stacked noise [steps - 1, n, 1, 28, 28].
Tensor noise_slice(const Tensor& stacked, int64_t k) {
  const int64_t n = stacked.size(1), size = n * 28 * 28;
  const std::vector<float> all = stacked.to_vector();
  return Tensor::from_vector(std::vector<float>(all.begin() + k * size, all.begin() + (k + 1) * size), {n, 1, 28, 28});
}

TEST(DdpmParity, LastTwentySamplerStepsMatchPyTorch) {
  // Tolerance: 16 x PyTorch's own float32 error on x_0 (see golden.h): 20
  // steps of a UNet in eval mode plus the reverse-step arithmetic, whose
  // 1 / sqrt(alpha_bar_t) amplifies eps's error a little at each step.
  const GoldenFile& g = ddpm_golden();
  const DdpmSchedule schedule;
  const int64_t first = std::stoll(g.metadata().at("first_step"));
  ASSERT_EQ(first, 20);
  for (const auto& [conditioning, mode] :
       {std::pair{UNetConditioning::time, std::string("time")},
        std::pair{UNetConditioning::time_and_class, std::string("time_and_class")}}) {
    SCOPED_TRACE(mode);
    Generator gen(0);
    UNet net(8, conditioning, gen);
    net.load_state_dict(g.with_prefix(mode + ".state."), /*strict=*/true);
    net.eval();
    std::vector<int64_t> labels;
    double guidance = 0.0;
    if (conditioning == UNetConditioning::time_and_class) {
      labels = g.get(mode + ".labels").to_vector_i64();
      guidance = 5.0;
    }
    const Tensor noise = g.get(mode + ".noise");
    ASSERT_EQ(noise.size(0), first - 1);
    autograd::NoGradGuard no_grad;
    Tensor x = g.copy(mode + ".x_start");
    for (int64_t t = first; t >= 1; --t) {
      const Tensor eps = ddpm_predict_noise(net, schedule, x, t, labels, guidance);
      x = ddpm_reverse_step(schedule, x, eps, t, t > 1 ? noise_slice(noise, first - t) : Tensor());
    }
    parity::expect_matches_golden(g, mode + ".x_end", x, parity::Tolerance{16.0, 1e-6, 0.0});
    parity::report_worst_ratio("sampler, " + mode);
  }
}

}  // namespace
}  // namespace engine
