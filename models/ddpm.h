// DDPM: denoising diffusion probabilistic models (Ho, Jain, Abbeel 2020), as
// the diffusion assignment uses them: the noise schedule, the training batch
// (forward process), one reverse step, and the samplers for the time- and
// the class-conditioned UNet with classifier-free guidance (Ho & Salimans
// 2022). The teaching page is docs/ddpm.md.
//
// The schedule and how t indexes it
// ---------------------------------
// T noising steps with betas evenly spaced from beta_start to beta_end:
//   beta_t      = linspace(beta_start, beta_end, T)[t - 1]   t = 1..T
//   alpha_t     = 1 - beta_t
//   alpha_bar_t = alpha_1 * alpha_2 * ... * alpha_t
// The arrays have T + 1 entries, index t = 0..T, and entry 0 is "no noise":
//   beta_0 = 0, alpha_0 = 1, alpha_bar_0 = 1   (the empty product)
// so x_0 is the clean image, x_t for t = 1..T is noised with alpha_bar_t,
// and the last reverse step (t = 1) lands exactly on x0_hat, because its
// coefficients are sqrt(alpha_bar_0) beta_1 / (1 - alpha_bar_1) = 1 and
// (1 - alpha_bar_0) = 0. Training draws t uniformly from 1..T and sampling
// runs t = T, T-1, ..., 1: both use exactly the noised indices 1..T, and the
// network always sees t / T in [1/T, 1].
//
// Everything is computed in double on the host and handed to the ops as
// float scalars; the tensors themselves stay on the model's device.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "models/unet.h"

namespace engine {

class DdpmSchedule {
 public:
  static constexpr int64_t kDefaultSteps = 300;
  static constexpr double kDefaultBetaStart = 1e-4;
  static constexpr double kDefaultBetaEnd = 0.02;

  // Throws engine::Error, before anything else happens, unless
  //   1 <= num_steps <= 100000,
  //   0 < beta_start < 1 and 0 < beta_end < 1 (finite), so that every
  //     alpha_t is in (0, 1) and 1 - alpha_bar_t > 0 for t >= 1,
  //   alpha_bar_T is still a positive normal float (> FLT_MIN): otherwise
  //     sqrt(alpha_bar_T) underflows and x0_hat = (...) / sqrt(alpha_bar_t)
  //     divides by zero.
  // The message names the argument, the accepted range and the value found.
  explicit DdpmSchedule(int64_t num_steps = kDefaultSteps, double beta_start = kDefaultBetaStart,
                        double beta_end = kDefaultBetaEnd);

  int64_t num_steps() const { return num_steps_; }  // T
  double beta_start() const { return beta_start_; }
  double beta_end() const { return beta_end_; }

  // Entry t of the arrays above, t = 0..T (throws otherwise).
  double beta(int64_t t) const;
  double alpha(int64_t t) const;
  double alpha_bar(int64_t t) const;

  // The whole arrays, T + 1 entries each (index 0 = no noise).
  const std::vector<double>& betas() const { return betas_; }
  const std::vector<double>& alphas() const { return alphas_; }
  const std::vector<double>& alpha_bars() const { return alpha_bars_; }

 private:
  void check_step(const char* what, int64_t t) const;

  int64_t num_steps_;
  double beta_start_, beta_end_;
  std::vector<double> betas_, alphas_, alpha_bars_;
};

// --- Training (the assignment's algorithms B.1 and B.3) -------------------------

// One noised training batch: the network is trained to predict `noise` from
// (x_t, t / T[, c]) with loss = mse_loss(prediction, noise).
struct DdpmTrainingBatch {
  Tensor x_t;                  // [N, 1, H, W]  sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps
  Tensor noise;                // [N, 1, H, W]  eps ~ N(0, I), the regression target
  Tensor t_input;              // [N, 1]        t / T, what the UNet takes
  Tensor class_input;          // [N, 10]       one-hot, or zeros when dropped; undefined without labels
  std::vector<int64_t> steps;  // the N timesteps t, each in 1..T
  std::vector<bool> dropped;   // per example: class dropped to "unconditional" (empty without labels)
};

// Builds the noised batch from clean images x0 [N, C, H, W] (any device; the
// tensors returned live there too). Draws from `gen`, in this order:
//   1. t     = randint(1, T + 1, [N])             one timestep per example
//   2. eps   = randn(x0.shape)                      the noise
//   3. u     = rand([N])  (only when labels given)  example n's class is dropped
//                                                   (c_n = 0) iff u_n < p_uncond
// so a run is repeatable from (seed, offset) and the noise depends on nothing
// but the generator. `labels`: empty for the time-conditioned model, else N
// digits in 0..9. p_uncond must be in [0, 1].
DdpmTrainingBatch make_ddpm_training_batch(const DdpmSchedule& schedule, const Tensor& x0,
                                           const std::vector<int64_t>& labels, double p_uncond, Generator& gen);

// The conditioning vector for `labels` (N digits in 0..9): float [N, 10],
// row n one-hot at labels[n], or all zeros where dropped[n] (dropped may be
// empty = none dropped).
Tensor class_one_hot(const std::vector<int64_t>& labels, const std::vector<bool>& dropped, Device device);

// --- Sampling (the assignment's algorithms B.2 and B.4) ---------------------------

// One reverse step from x_t to x_{t-1}, t in 1..T, given the predicted noise:
//   x0_hat  = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
//   x_{t-1} = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x0_hat
//           + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
//           + sqrt(beta_t) z
// x_t, eps: [N, ...] same shape and device; z: like x_t, or undefined for
// z = 0 (the sampler passes z = 0 at t = 1). Not recorded by autograd when
// called under NoGradGuard (the samplers do).
Tensor ddpm_reverse_step(const DdpmSchedule& schedule, const Tensor& x_t, const Tensor& eps, int64_t t,
                         const Tensor& z);

// The noise the sampler uses at step t for the batch x_t [N, 1, 28, 28]:
//   time model:   eps_theta(x_t, t/T)
//   class model:  eps = eps_u + gamma (eps_c - eps_u)   (classifier-free guidance)
//                 eps_c = eps_theta(x_t, t/T, c), eps_u = eps_theta(x_t, t/T, 0),
//                 computed as ONE forward of the batch [x_t; x_t] with
//                 conditions [c; 0] (2N examples), then split.
// `labels`: must be empty for the time model; N digits in 0..9 for the class
// model. gamma = 1 gives eps_c, gamma = 0 gives eps_u. Runs the model as it
// is (train or eval mode); call it under NoGradGuard.
Tensor ddpm_predict_noise(UNet& model, const DdpmSchedule& schedule, const Tensor& x_t, int64_t t,
                          const std::vector<int64_t>& labels, double guidance_scale);

struct DdpmSampleOptions {
  int64_t num_samples = 0;          // N (for the class model: labels.size(), or 0 = that)
  std::vector<int64_t> labels;      // class model: the digit of each sample; time model: empty
  double guidance_scale = 5.0;      // gamma, class model only; in [0, kMaxGuidanceScale]
  // Called first with (T, x_T), the pure noise, then after every reverse
  // step with (t - 1, x_{t-1}), i.e. last with (0, the final samples): for
  // the frames of a denoising GIF. Optional.
  std::function<void(int64_t step, const Tensor& x)> on_step;

  static constexpr double kMaxGuidanceScale = 100.0;
};

// Draws N samples [N, 1, 28, 28] on the model's device (not clipped; the
// images live in about [0, 1]):
//   x_T ~ N(0, I);  for t = T..1: x_{t-1} = ddpm_reverse_step(x_t, eps, t, z),
//   z ~ N(0, I) for t > 1 and z = 0 at t = 1.
// Draws from `gen` in this order: x_T, then z for t = T, T-1, ..., 2. The
// model runs in eval mode (BatchNorm uses its running statistics, so each
// sample is independent of the others in the batch) and under NoGradGuard;
// its previous mode is restored afterwards. Same model, schedule, options and
// generator state: the same bits. Arguments are checked before any work.
Tensor ddpm_sample(UNet& model, const DdpmSchedule& schedule, const DdpmSampleOptions& options, Generator& gen);

}  // namespace engine
