// DDPM schedule, training batches, the reverse step and the samplers.
// The math and the indexing convention are in models/ddpm.h and docs/ddpm.md.
#include "models/ddpm.h"

#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/ops.h"

namespace engine {
namespace {

// linspace(start, end, steps)[i] in double: start + i (end - start) / (steps - 1),
// and just `start` when steps = 1 (torch.linspace's convention).
double linspace_at(double start, double end, int64_t steps, int64_t i) {
  if (steps == 1) return start;
  return start + static_cast<double>(i) * (end - start) / static_cast<double>(steps - 1);
}

void check_beta(const char* name, double beta) {
  ENGINE_CHECK(std::isfinite(beta) && beta > 0.0 && beta < 1.0, "DdpmSchedule: argument '", name,
               "': expected 0 < ", name, " < 1 (so that every alpha_t = 1 - beta_t is in (0, 1) and alpha_bar_t > 0), got ",
               beta);
}

// Rows [begin, begin + count) of a tensor [M, ...] as a view sharing its
// storage (every tensor is contiguous, so those rows are one contiguous
// range). Not recorded by autograd: only for tensors that do not require
// grad, as under NoGradGuard.
Tensor leading_rows(const Tensor& t, int64_t begin, int64_t count) {
  ENGINE_ASSERT(!t.requires_grad());
  ENGINE_ASSERT(t.dim() >= 1 && begin >= 0 && count >= 0 && begin + count <= t.size(0));
  const int64_t row_elements = t.size(0) == 0 ? 0 : t.numel() / t.size(0);
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = t.shape();
  impl->shape[0] = count;
  impl->dtype = t.dtype();
  impl->storage = t.impl().storage;
  impl->offset = t.impl().offset + begin * row_elements;
  return Tensor(impl);
}

// The device of the model's weights (where the sampler puts x).
Device device_of(const UNet& model) { return model.parameters().front().device(); }

void check_conditioned(const char* op, const UNet& model) {
  ENGINE_CHECK(model.conditioning != UNetConditioning::none, op,
               ": the UNet must be time-conditioned (UNetConditioning::time or ::time_and_class), got the "
               "unconditional one-step denoiser");
}

// The labels/guidance checks the samplers share.
void check_labels_and_guidance(const char* op, const UNet& model, const std::vector<int64_t>& labels,
                               int64_t expected_count, double guidance_scale) {
  if (model.conditioning == UNetConditioning::time) {
    ENGINE_CHECK(labels.empty(), op, ": argument 'labels': the time-conditioned UNet takes no class labels, got ",
                 labels.size());
    return;
  }
  ENGINE_CHECK(static_cast<int64_t>(labels.size()) == expected_count, op,
               ": argument 'labels': the class-conditioned UNet needs one digit per sample, expected ",
               expected_count, " labels, got ", labels.size());
  for (size_t n = 0; n < labels.size(); ++n)
    ENGINE_CHECK(labels[n] >= 0 && labels[n] < UNet::kNumClasses, op, ": argument 'labels': digit ", n,
                 " must be in 0..", UNet::kNumClasses - 1, ", got ", labels[n]);
  ENGINE_CHECK(std::isfinite(guidance_scale) && guidance_scale >= 0.0 &&
                   guidance_scale <= DdpmSampleOptions::kMaxGuidanceScale,
               op, ": argument 'guidance_scale': expected a guidance scale in [0, ",
               DdpmSampleOptions::kMaxGuidanceScale, "] (1 = purely conditional, 0 = unconditional), got ",
               guidance_scale);
}

// Puts a module in eval mode for the lifetime of the object, then restores
// its previous mode.
class EvalModeScope {
 public:
  explicit EvalModeScope(Module& module) : module_(module), was_training_(module.is_training()) { module_.eval(); }
  ~EvalModeScope() { module_.train(was_training_); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  Module& module_;
  bool was_training_;
};

}  // namespace

// --- Schedule ---------------------------------------------------------------------

DdpmSchedule::DdpmSchedule(int64_t num_steps, double beta_start, double beta_end)
    : num_steps_(num_steps), beta_start_(beta_start), beta_end_(beta_end) {
  ENGINE_CHECK(num_steps >= 1 && num_steps <= 100000,
               "DdpmSchedule: argument 'num_steps': expected the number of diffusion steps T in 1..100000, got ",
               num_steps);
  check_beta("beta_start", beta_start);
  check_beta("beta_end", beta_end);

  const int64_t T = num_steps;
  betas_.assign(static_cast<size_t>(T + 1), 0.0);
  alphas_.assign(static_cast<size_t>(T + 1), 1.0);
  alpha_bars_.assign(static_cast<size_t>(T + 1), 1.0);  // index 0: no noise
  for (int64_t t = 1; t <= T; ++t) {
    betas_[t] = linspace_at(beta_start, beta_end, T, t - 1);
    alphas_[t] = 1.0 - betas_[t];
    alpha_bars_[t] = alpha_bars_[t - 1] * alphas_[t];
  }
  // alpha_bar decreases with t, so its last entry is the smallest.
  const double smallest = alpha_bars_[T];
  ENGINE_CHECK(smallest > static_cast<double>(std::numeric_limits<float>::min()),
               "DdpmSchedule: alpha_bar_T = prod_t (1 - beta_t) = ", smallest, " for T=", T, ", beta_start=", beta_start,
               ", beta_end=", beta_end, " is not a positive normal float (> ", std::numeric_limits<float>::min(),
               "); sampling divides by sqrt(alpha_bar_t): use fewer steps or smaller betas");
}

void DdpmSchedule::check_step(const char* what, int64_t t) const {
  ENGINE_CHECK(t >= 0 && t <= num_steps_, "DdpmSchedule::", what, ": expected a step t in 0..", num_steps_,
               ", got ", t);
}

double DdpmSchedule::beta(int64_t t) const {
  check_step("beta", t);
  return betas_[static_cast<size_t>(t)];
}

double DdpmSchedule::alpha(int64_t t) const {
  check_step("alpha", t);
  return alphas_[static_cast<size_t>(t)];
}

double DdpmSchedule::alpha_bar(int64_t t) const {
  check_step("alpha_bar", t);
  return alpha_bars_[static_cast<size_t>(t)];
}

// --- Training batches -----------------------------------------------------------------

Tensor class_one_hot(const std::vector<int64_t>& labels, const std::vector<bool>& dropped, Device device) {
  ENGINE_CHECK(dropped.empty() || dropped.size() == labels.size(), "class_one_hot: argument 'dropped': expected ",
               labels.size(), " flags (one per label) or none, got ", dropped.size());
  const int64_t N = static_cast<int64_t>(labels.size());
  const int64_t K = UNet::kNumClasses;
  std::vector<float> values(static_cast<size_t>(N * K), 0.0f);
  for (int64_t n = 0; n < N; ++n) {
    ENGINE_CHECK(labels[n] >= 0 && labels[n] < K, "class_one_hot: argument 'labels': label ", n, " must be in 0..",
                 K - 1, ", got ", labels[n]);
    if (!dropped.empty() && dropped[n]) continue;  // unconditional: the zero vector
    values[static_cast<size_t>(n * K + labels[n])] = 1.0f;
  }
  return Tensor::from_vector(values, {N, K}, device);
}

DdpmTrainingBatch make_ddpm_training_batch(const DdpmSchedule& schedule, const Tensor& x0,
                                           const std::vector<int64_t>& labels, double p_uncond, Generator& gen) {
  const char* op = "make_ddpm_training_batch";
  check_float32(op, "x0", x0);
  check_dim(op, "x0", x0, 4, "[N, C, H, W]");
  const int64_t N = x0.size(0);
  ENGINE_CHECK(N >= 1, op, ": argument 'x0': expected at least one image, got shape ", shape_str(x0.shape()));
  ENGINE_CHECK(labels.empty() || static_cast<int64_t>(labels.size()) == N, op,
               ": argument 'labels': expected none (time model) or one per image (", N, "), got ", labels.size());
  ENGINE_CHECK(std::isfinite(p_uncond) && p_uncond >= 0.0 && p_uncond <= 1.0, op,
               ": argument 'p_uncond': expected a probability in [0, 1], got ", p_uncond);
  for (size_t n = 0; n < labels.size(); ++n)
    ENGINE_CHECK(labels[n] >= 0 && labels[n] < UNet::kNumClasses, op, ": argument 'labels': label ", n,
                 " must be in 0..", UNet::kNumClasses - 1, ", got ", labels[n]);

  const Device device = x0.device();
  const int64_t T = schedule.num_steps();
  DdpmTrainingBatch batch;

  // 1. Timesteps, uniform in 1..T (host: the coefficients are looked up there).
  batch.steps = randint(1, T + 1, {N}, gen).to_vector_i64();
  // 2. The noise, on x0's device.
  batch.noise = randn(x0.shape(), gen, device);
  // 3. Classifier-free guidance dropout: each example loses its class with
  //    probability p_uncond (u ~ U[0, 1), dropped iff u < p_uncond).
  if (!labels.empty()) {
    const std::vector<float> u = rand({N}, gen).to_vector();
    batch.dropped.resize(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) batch.dropped[n] = static_cast<double>(u[n]) < p_uncond;
    batch.class_input = class_one_hot(labels, batch.dropped, device);
  }

  // x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, with per-example
  // coefficients [N, 1, 1, 1] broadcast over C, H, W.
  std::vector<float> signal(static_cast<size_t>(N)), noise_level(static_cast<size_t>(N)), t_over_T(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    const double alpha_bar = schedule.alpha_bar(batch.steps[n]);
    signal[n] = static_cast<float>(std::sqrt(alpha_bar));
    noise_level[n] = static_cast<float>(std::sqrt(1.0 - alpha_bar));
    t_over_T[n] = static_cast<float>(static_cast<double>(batch.steps[n]) / static_cast<double>(T));
  }
  const Tensor x0_data = x0.detach();
  batch.x_t = Tensor::from_vector(signal, {N, 1, 1, 1}, device) * x0_data +
              Tensor::from_vector(noise_level, {N, 1, 1, 1}, device) * batch.noise;
  batch.t_input = Tensor::from_vector(t_over_T, {N, 1}, device);
  return batch;
}

// --- Sampling ----------------------------------------------------------------------------

Tensor ddpm_reverse_step(const DdpmSchedule& schedule, const Tensor& x_t, const Tensor& eps, int64_t t,
                         const Tensor& z) {
  const char* op = "ddpm_reverse_step";
  check_float32(op, "x_t", x_t);
  check_float32(op, "eps", eps);
  check_shape(op, "eps", eps, x_t.shape());
  check_same_device(op, "x_t", x_t, "eps", eps);
  if (z.defined()) {
    check_float32(op, "z", z);
    check_shape(op, "z", z, x_t.shape());
    check_same_device(op, "x_t", x_t, "z", z);
  }
  ENGINE_CHECK(t >= 1 && t <= schedule.num_steps(), op, ": argument 't': expected a noised step in 1..",
               schedule.num_steps(), ", got ", t);

  const double beta = schedule.beta(t), alpha = schedule.alpha(t);
  const double alpha_bar = schedule.alpha_bar(t), alpha_bar_prev = schedule.alpha_bar(t - 1);

  // The clean image the predicted noise implies.
  const Tensor x0_hat = scale(x_t - eps * static_cast<float>(std::sqrt(1.0 - alpha_bar)),
                              static_cast<float>(1.0 / std::sqrt(alpha_bar)));
  // The mean of q(x_{t-1} | x_t, x0_hat): a blend of the clean estimate and x_t.
  const double x0_weight = std::sqrt(alpha_bar_prev) * beta / (1.0 - alpha_bar);
  const double xt_weight = std::sqrt(alpha) * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar);
  Tensor x_prev = x0_hat * static_cast<float>(x0_weight) + x_t * static_cast<float>(xt_weight);
  // Plus fresh noise with variance beta_t.
  if (z.defined()) x_prev = x_prev + z * static_cast<float>(std::sqrt(beta));
  return x_prev;
}

Tensor ddpm_predict_noise(UNet& model, const DdpmSchedule& schedule, const Tensor& x_t, int64_t t,
                          const std::vector<int64_t>& labels, double guidance_scale) {
  const char* op = "ddpm_predict_noise";
  check_conditioned(op, model);
  check_float32(op, "x_t", x_t);
  check_dim(op, "x_t", x_t, 4, "[N, 1, 28, 28]");
  ENGINE_CHECK(t >= 1 && t <= schedule.num_steps(), op, ": argument 't': expected a noised step in 1..",
               schedule.num_steps(), ", got ", t);
  const int64_t N = x_t.size(0);
  check_labels_and_guidance(op, model, labels, N, guidance_scale);

  autograd::NoGradGuard no_grad;
  const Device device = x_t.device();
  const float t_over_T = static_cast<float>(static_cast<double>(t) / static_cast<double>(schedule.num_steps()));

  if (model.conditioning == UNetConditioning::time)
    return model.forward(x_t, Tensor::full({N, 1}, t_over_T, device), Tensor());

  // Classifier-free guidance: one forward of 2N examples, the first N with
  // their class, the last N with the zero vector ("no class").
  std::vector<int64_t> both_labels = labels;
  both_labels.insert(both_labels.end(), labels.begin(), labels.end());
  std::vector<bool> dropped(static_cast<size_t>(2 * N), false);
  for (int64_t n = N; n < 2 * N; ++n) dropped[n] = true;
  const Tensor out = model.forward(concat({x_t, x_t}, 0), Tensor::full({2 * N, 1}, t_over_T, device),
                                   class_one_hot(both_labels, dropped, device));
  const Tensor eps_conditional = leading_rows(out, 0, N);
  const Tensor eps_unconditional = leading_rows(out, N, N);
  return eps_unconditional + (eps_conditional - eps_unconditional) * static_cast<float>(guidance_scale);
}

Tensor ddpm_sample(UNet& model, const DdpmSchedule& schedule, const DdpmSampleOptions& options, Generator& gen) {
  const char* op = "ddpm_sample";
  check_conditioned(op, model);
  int64_t N = options.num_samples;
  if (model.conditioning == UNetConditioning::time_and_class && N == 0) N = static_cast<int64_t>(options.labels.size());
  ENGINE_CHECK(N >= 1, op, ": argument 'num_samples': expected at least one sample, got ", N);
  check_labels_and_guidance(op, model, options.labels, N, options.guidance_scale);

  EvalModeScope eval_mode(model);
  autograd::NoGradGuard no_grad;
  const Device device = device_of(model);
  const int64_t T = schedule.num_steps();
  const int64_t size = UNet::kImageSize;

  Tensor x = randn({N, 1, size, size}, gen, device);  // x_T ~ N(0, I)
  if (options.on_step) options.on_step(T, x);
  for (int64_t t = T; t >= 1; --t) {
    const Tensor eps = ddpm_predict_noise(model, schedule, x, t, options.labels, options.guidance_scale);
    const Tensor z = t > 1 ? randn({N, 1, size, size}, gen, device) : Tensor();
    x = ddpm_reverse_step(schedule, x, eps, t, z);
    if (options.on_step) options.on_step(t - 1, x);
  }
  return x;
}

}  // namespace engine
