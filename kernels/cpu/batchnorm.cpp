#include "kernels/cpu/batchnorm.h"

#include <cmath>
#include <vector>

#include "kernels/common/batchnorm_math.h"

namespace engine::cpu {
namespace {

// sums[c] = sum over n < N of plane_sum(n, c), where plane_sum(n, c) sums the
// HW values of plane (n, c) in double. The N*C plane sums run in parallel,
// each on one thread in index order; they are then added in order of n. The
// result is the same whatever the thread count. Sum is double, or a struct
// of doubles with += (several sums from one pass over the data).
template <typename Sum, typename PlaneSum>
void per_channel_sums(int64_t batch, int64_t channels, int64_t spatial, Sum* sums, PlaneSum plane_sum) {
  const int64_t planes = batch * channels;
  std::vector<Sum> partial(static_cast<std::size_t>(planes));
#pragma omp parallel for schedule(static) if (planes * spatial > 32768)
  for (int64_t p = 0; p < planes; ++p) partial[static_cast<std::size_t>(p)] = plane_sum(p / channels, p % channels);
  for (int64_t c = 0; c < channels; ++c) {
    Sum s{};
    for (int64_t n = 0; n < batch; ++n) s += partial[static_cast<std::size_t>(n * channels + c)];
    sums[c] = s;
  }
}

// The two per-channel sums of the backward pass, from one pass over grad_y and x.
struct BackwardSums {
  double grad_y = 0.0;       // sum grad_y
  double grad_y_xhat = 0.0;  // sum grad_y * xhat
  BackwardSums& operator+=(const BackwardSums& other) {
    grad_y += other.grad_y;
    grad_y_xhat += other.grad_y_xhat;
    return *this;
  }
};

}  // namespace

void batchnorm_batch_stats(const float* x, int64_t batch, int64_t channels, int64_t spatial, double momentum,
                           double eps, float* mean, float* inv_std, float* running_mean, float* running_var) {
  const double m = static_cast<double>(batch * spatial);
  std::vector<double> channel_mean(static_cast<std::size_t>(channels));
  std::vector<double> squared_deviation(static_cast<std::size_t>(channels));

  // Pass 1: the mean.
  per_channel_sums(batch, channels, spatial, channel_mean.data(), [&](int64_t n, int64_t c) {
    const float* plane = x + (n * channels + c) * spatial;
    double s = 0.0;
    for (int64_t i = 0; i < spatial; ++i) s += plane[i];
    return s;
  });
  for (double& mu : channel_mean) mu /= m;

  // Pass 2: the squared deviations from it. Two passes (rather than
  // E[x^2] - E[x]^2) avoid cancellation when the mean is large against the spread.
  per_channel_sums(batch, channels, spatial, squared_deviation.data(), [&](int64_t n, int64_t c) {
    const float* plane = x + (n * channels + c) * spatial;
    const double mu = channel_mean[static_cast<std::size_t>(c)];
    double s = 0.0;
    for (int64_t i = 0; i < spatial; ++i) {
      const double d = plane[i] - mu;
      s += d * d;
    }
    return s;
  });

  for (int64_t c = 0; c < channels; ++c) {
    const double mu = channel_mean[static_cast<std::size_t>(c)];
    const double biased_var = squared_deviation[static_cast<std::size_t>(c)] / m;
    const double unbiased_var = squared_deviation[static_cast<std::size_t>(c)] / (m - 1.0);
    mean[c] = static_cast<float>(mu);
    inv_std[c] = static_cast<float>(1.0 / std::sqrt(biased_var + eps));
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased_var);
  }
}

void batchnorm_running_stats(const float* running_mean, const float* running_var, int64_t channels, double eps,
                             float* mean, float* inv_std) {
  for (int64_t c = 0; c < channels; ++c) {
    mean[c] = running_mean[c];
    inv_std[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
  }
}

void batchnorm_apply(const float* x, const float* mean, const float* inv_std, const float* weight,
                     const float* bias, float* y, int64_t batch, int64_t channels, int64_t spatial) {
  const int64_t planes = batch * channels;
#pragma omp parallel for schedule(static) if (planes * spatial > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % channels;
    const float mu = mean[c], s = inv_std[c], w = weight[c], b = bias[c];
    const float* x_plane = x + p * spatial;
    float* y_plane = y + p * spatial;
#pragma omp simd
    for (int64_t i = 0; i < spatial; ++i) y_plane[i] = math::batchnorm_apply(x_plane[i], mu, s, w, b);
  }
}

void batchnorm_backward(const float* x, const float* grad_y, const float* mean, const float* inv_std,
                        const float* weight, bool training, float* grad_x, float* grad_weight, float* grad_bias,
                        int64_t batch, int64_t channels, int64_t spatial) {
  const double m = static_cast<double>(batch * spatial);
  // Per channel: sum grad_y (= dbias) and sum grad_y * xhat (= dweight). The
  // training-mode grad_x needs both (mean(g) = weight * sum_gy / m,
  // mean(g xhat) = weight * sum_gy_xhat / m); eval mode needs neither.
  const bool need_sums = training ? grad_x || grad_weight || grad_bias : grad_weight || grad_bias;
  std::vector<BackwardSums> sums(static_cast<std::size_t>(channels));
  if (need_sums) {
    per_channel_sums(batch, channels, spatial, sums.data(), [&](int64_t n, int64_t c) {
      const float* gy = grad_y + (n * channels + c) * spatial;
      const float* xp = x + (n * channels + c) * spatial;
      const double mu = mean[c], s_inv = inv_std[c];
      BackwardSums s;
      for (int64_t i = 0; i < spatial; ++i) {
        s.grad_y += gy[i];
        s.grad_y_xhat += gy[i] * ((xp[i] - mu) * s_inv);
      }
      return s;
    });
  }
  for (int64_t c = 0; c < channels; ++c) {
    if (grad_weight) grad_weight[c] += static_cast<float>(sums[static_cast<std::size_t>(c)].grad_y_xhat);
    if (grad_bias) grad_bias[c] += static_cast<float>(sums[static_cast<std::size_t>(c)].grad_y);
  }
  if (!grad_x) return;

  const int64_t planes = batch * channels;
#pragma omp parallel for schedule(static) if (planes * spatial > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % channels;
    const float mu = mean[c], s = inv_std[c], w = weight[c];
    const float* xp = x + p * spatial;
    const float* gy = grad_y + p * spatial;
    float* gx = grad_x + p * spatial;
    if (training) {
      const BackwardSums& channel_sums = sums[static_cast<std::size_t>(c)];
      const float mean_g = static_cast<float>(w * channel_sums.grad_y / m);
      const float mean_g_xhat = static_cast<float>(w * channel_sums.grad_y_xhat / m);
#pragma omp simd
      for (int64_t i = 0; i < spatial; ++i)
        gx[i] += math::batchnorm_input_grad_train(gy[i], w, math::batchnorm_normalize(xp[i], mu, s), s, mean_g,
                                                  mean_g_xhat);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < spatial; ++i) gx[i] += math::batchnorm_input_grad_eval(gy[i], w, s);
    }
  }
}

}  // namespace engine::cpu
