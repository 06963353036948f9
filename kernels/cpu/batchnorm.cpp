#include "kernels/cpu/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/common/batchnorm_math.h"

namespace engine::cpu {
namespace {

// Below this many elements, one thread: starting a parallel region costs more.
constexpr int64_t kParallelThreshold = 32768;

// ---------------------------------------------------------------------------
// Vectorised, deterministic sums over one plane, in double.
//
// A sum written `double s = 0; for (i) s += v[i];` is a chain of dependent
// additions: each waits for the previous one (4 cycles), and the compiler may
// not reorder them (floating-point addition is not associative), so it cannot
// use vector instructions either: ~4 cycles per value, slower than memory.
// Instead the values are dealt round-robin to kLanes = 8 double partial
// sums, lane l taking i = l, l + 8, l + 16, ...: the lanes are independent
// and live in two AVX2 registers of 4 doubles (Double4 below), so each
// instruction converts or adds 4 values, and the two registers' additions
// overlap. The order of every addition is still fixed (lane by lane, in
// index order; then the 8 lanes in order, then the tail), so the result is
// the same bits on every run and for any thread count. The terms are formed
// and summed in double, as a one-value-at-a-time double loop would.
//
// Float4 / Double4 are GCC's (and Clang's) vector extension: values of 4
// floats / 4 doubles on which + - * act lane by lane (a scalar operand is
// broadcast to every lane); __builtin_convertvector converts lane by lane.
// Written as a plain `lanes[l] += ...` loop over an array instead, GCC may
// keep the additions in order one lane at a time (shuffles and scalar adds,
// three times slower); the vector types leave it no choice.
// ---------------------------------------------------------------------------
constexpr int kLanes = 8;
using Float4 = float __attribute__((vector_size(4 * sizeof(float))));
using Double4 = double __attribute__((vector_size(4 * sizeof(double))));

// v[0 .. 4) converted to double (no alignment needed).
inline Double4 load4_as_double(const float* v) {
  Float4 values;
  std::memcpy(&values, v, sizeof values);
  return __builtin_convertvector(values, Double4);
}

// The 8 lanes (lanes 0-3 in low, 4-7 in high) added in lane order.
inline double lane_total(const Double4& low, const Double4& high) {
  double total = 0.0;
  for (int l = 0; l < 4; ++l) total += low[l];
  for (int l = 0; l < 4; ++l) total += high[l];
  return total;
}

// sum over i < count of term(a[i]), in double as described above. term is
// called on a Double4 of 4 consecutive values (and on single doubles for the
// tail), so it is written once with an auto parameter.
template <typename Term>
double lane_sum(int64_t count, const float* a, const Term& term) {
  Double4 low = {}, high = {};
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    low += term(load4_as_double(a + i));
    high += term(load4_as_double(a + i + 4));
  }
  double total = lane_total(low, high);
  for (; i < count; ++i) total += term(static_cast<double>(a[i]));
  return total;
}

// Two such sums from one pass over a and b:
//   sum_1 = sum term_1(a[i], b[i]),   sum_2 = sum term_2(a[i], b[i]).
template <typename Term1, typename Term2>
void lane_sums(int64_t count, const float* a, const float* b, const Term1& term_1, const Term2& term_2,
               double& sum_1, double& sum_2) {
  Double4 low_1 = {}, high_1 = {}, low_2 = {}, high_2 = {};
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    const Double4 a_low = load4_as_double(a + i), a_high = load4_as_double(a + i + 4);
    const Double4 b_low = load4_as_double(b + i), b_high = load4_as_double(b + i + 4);
    low_1 += term_1(a_low, b_low);
    high_1 += term_1(a_high, b_high);
    low_2 += term_2(a_low, b_low);
    high_2 += term_2(a_high, b_high);
  }
  sum_1 = lane_total(low_1, high_1);
  sum_2 = lane_total(low_2, high_2);
  for (; i < count; ++i) {
    sum_1 += term_1(static_cast<double>(a[i]), static_cast<double>(b[i]));
    sum_2 += term_2(static_cast<double>(a[i]), static_cast<double>(b[i]));
  }
}

// ---------------------------------------------------------------------------
// Forward statistics in one pass over memory.
//
// The variance needs the mean first. Computing E[x^2] - E[x]^2 from one pass
// cancels catastrophically when the mean is large against the spread, and
// two passes over all of x read it twice. Instead each plane (n, c) -- HW
// values, a few KB, still in cache after its first sweep -- is swept twice:
// its sum, then its squared deviations from its own mean. The planes of a
// channel are then combined exactly (Chan, Golub and LeVeque's pairwise
// update): with plane means mu_p, channel mean mu, HW values per plane,
//     sum over the channel (x - mu)^2 = sum_p [ sum over p (x - mu_p)^2 + HW (mu_p - mu)^2 ],
// since within a plane the deviations from mu_p sum to zero.
// ---------------------------------------------------------------------------
struct PlaneMoments {
  double sum = 0.0;                // sum of the plane's values
  double squared_deviation = 0.0;  // sum of (x - plane mean)^2
};

PlaneMoments plane_moments(const float* values, int64_t count) {
  PlaneMoments moments;
  moments.sum = lane_sum(count, values, [](auto x) { return x; });
  const double plane_mean = moments.sum / static_cast<double>(count);
  moments.squared_deviation = lane_sum(count, values, [plane_mean](auto x) {
    const auto d = x - plane_mean;
    return d * d;
  });
  return moments;
}

// The two per-channel sums of the backward pass, from one pass over grad_y and x.
struct BackwardSums {
  double grad_y = 0.0;           // sum grad_y
  double grad_y_centered = 0.0;  // sum grad_y * (x - mean); times inv_std: sum grad_y * xhat
};

// ---------------------------------------------------------------------------
// The reference implementation's helpers (one value at a time in double).
// ---------------------------------------------------------------------------

// sums[c] = sum over n < N of plane_sum(n, c), where plane_sum(n, c) sums the
// HW values of plane (n, c) in double. The N*C plane sums run in parallel,
// each on one thread in index order; they are then added in order of n. The
// result is the same whatever the thread count. Sum is double, or a struct
// of doubles with += (several sums from one pass over the data).
template <typename Sum, typename PlaneSum>
void per_channel_sums(int64_t batch, int64_t channels, int64_t spatial, Sum* sums, PlaneSum plane_sum) {
  const int64_t planes = batch * channels;
  std::vector<Sum> partial(static_cast<std::size_t>(planes));
#pragma omp parallel for schedule(static) if (planes * spatial > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) partial[static_cast<std::size_t>(p)] = plane_sum(p / channels, p % channels);
  for (int64_t c = 0; c < channels; ++c) {
    Sum s{};
    for (int64_t n = 0; n < batch; ++n) s += partial[static_cast<std::size_t>(n * channels + c)];
    sums[c] = s;
  }
}

struct ReferenceBackwardSums {
  double grad_y = 0.0;       // sum grad_y
  double grad_y_xhat = 0.0;  // sum grad_y * xhat
  ReferenceBackwardSums& operator+=(const ReferenceBackwardSums& other) {
    grad_y += other.grad_y;
    grad_y_xhat += other.grad_y_xhat;
    return *this;
  }
};

// mean, inv_std and the running-statistics update from the per-channel mean
// and sum of squared deviations (shared by both implementations).
void finish_batch_stats(const double* channel_mean, const double* squared_deviation, int64_t channels, double m,
                        double momentum, double eps, float* mean, float* inv_std, float* running_mean,
                        float* running_var) {
  for (int64_t c = 0; c < channels; ++c) {
    const double mu = channel_mean[c];
    const double biased_var = squared_deviation[c] / m;
    const double unbiased_var = squared_deviation[c] / (m - 1.0);
    mean[c] = static_cast<float>(mu);
    inv_std[c] = static_cast<float>(1.0 / std::sqrt(biased_var + eps));
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased_var);
  }
}

// Per channel: sum grad_y and sum grad_y * xhat.
struct SumPair {
  double grad_y;
  double grad_y_xhat;
};

// grad_x += the input gradient, given per channel sum grad_y and sum grad_y * xhat.
// (The two sums are only read in training mode.)
template <typename SumsOf>
void batchnorm_input_grad(const float* x, const float* grad_y, const float* mean, const float* inv_std,
                          const float* weight, bool training, float* grad_x, int64_t batch, int64_t channels,
                          int64_t spatial, const SumsOf& sums_of) {
  const double m = static_cast<double>(batch * spatial);
  const int64_t planes = batch * channels;
#pragma omp parallel for schedule(static) if (planes * spatial > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % channels;
    const float mu = mean[c], s = inv_std[c], w = weight[c];
    const float* xp = x + p * spatial;
    const float* gy = grad_y + p * spatial;
    float* gx = grad_x + p * spatial;
    if (training) {
      const auto [sum_grad_y, sum_grad_y_xhat] = sums_of(c);
      const float mean_g = static_cast<float>(w * sum_grad_y / m);
      const float mean_g_xhat = static_cast<float>(w * sum_grad_y_xhat / m);
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

}  // namespace

void batchnorm_batch_stats(const float* x, int64_t batch, int64_t channels, int64_t spatial, double momentum,
                           double eps, float* mean, float* inv_std, float* running_mean, float* running_var) {
  const int64_t planes = batch * channels;
  std::vector<PlaneMoments> moments(static_cast<std::size_t>(planes));
#pragma omp parallel for schedule(static) if (planes * spatial > kParallelThreshold)
  for (int64_t p = 0; p < planes; ++p) moments[static_cast<std::size_t>(p)] = plane_moments(x + p * spatial, spatial);

  // Per channel, in order of n: the mean, then Chan's combination.
  const double hw = static_cast<double>(spatial), m = static_cast<double>(batch * spatial);
  std::vector<double> channel_mean(static_cast<std::size_t>(channels));
  std::vector<double> squared_deviation(static_cast<std::size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    double total = 0.0;
    for (int64_t n = 0; n < batch; ++n) total += moments[static_cast<std::size_t>(n * channels + c)].sum;
    const double mu = total / m;
    double deviation = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const PlaneMoments& plane = moments[static_cast<std::size_t>(n * channels + c)];
      const double plane_offset = plane.sum / hw - mu;
      deviation += plane.squared_deviation + hw * plane_offset * plane_offset;
    }
    channel_mean[static_cast<std::size_t>(c)] = mu;
    squared_deviation[static_cast<std::size_t>(c)] = deviation;
  }
  finish_batch_stats(channel_mean.data(), squared_deviation.data(), channels, m, momentum, eps, mean, inv_std,
                     running_mean, running_var);
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
#pragma omp parallel for schedule(static) if (planes * spatial > kParallelThreshold)
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
  // Per channel: sum grad_y (= dbias) and sum grad_y * xhat (= dweight). The
  // training-mode grad_x needs both (mean(g) = weight * sum_gy / m,
  // mean(g xhat) = weight * sum_gy_xhat / m); eval mode needs neither.
  const bool need_sums = training ? grad_x || grad_weight || grad_bias : grad_weight || grad_bias;
  const int64_t planes = batch * channels;
  std::vector<SumPair> sums(static_cast<std::size_t>(channels), SumPair{0.0, 0.0});
  if (need_sums) {
    // Per plane, one pass over grad_y and x: sum grad_y and sum grad_y (x - mean).
    // (xhat = (x - mean) inv_std: inv_std multiplies the channel total once.)
    std::vector<BackwardSums> partial(static_cast<std::size_t>(planes));
#pragma omp parallel for schedule(static) if (planes * spatial > kParallelThreshold)
    for (int64_t p = 0; p < planes; ++p) {
      const float* gy = grad_y + p * spatial;
      const float* xp = x + p * spatial;
      const double mu = mean[p % channels];
      BackwardSums& s = partial[static_cast<std::size_t>(p)];
      lane_sums(
          spatial, gy, xp, [](auto g, auto) { return g; }, [mu](auto g, auto x_value) { return g * (x_value - mu); },
          s.grad_y, s.grad_y_centered);
    }
    for (int64_t c = 0; c < channels; ++c) {
      double sum_grad_y = 0.0, sum_grad_y_centered = 0.0;
      for (int64_t n = 0; n < batch; ++n) {
        sum_grad_y += partial[static_cast<std::size_t>(n * channels + c)].grad_y;
        sum_grad_y_centered += partial[static_cast<std::size_t>(n * channels + c)].grad_y_centered;
      }
      sums[static_cast<std::size_t>(c)] = {sum_grad_y, sum_grad_y_centered * static_cast<double>(inv_std[c])};
    }
  }
  for (int64_t c = 0; c < channels; ++c) {
    if (grad_weight) grad_weight[c] += static_cast<float>(sums[static_cast<std::size_t>(c)].grad_y_xhat);
    if (grad_bias) grad_bias[c] += static_cast<float>(sums[static_cast<std::size_t>(c)].grad_y);
  }
  if (!grad_x) return;
  batchnorm_input_grad(x, grad_y, mean, inv_std, weight, training, grad_x, batch, channels, spatial,
                       [&](int64_t c) { return sums[static_cast<std::size_t>(c)]; });
}

// ---------------------------------------------------------------------------
// The reference implementation.
// ---------------------------------------------------------------------------

void batchnorm_batch_stats_reference(const float* x, int64_t batch, int64_t channels, int64_t spatial,
                                     double momentum, double eps, float* mean, float* inv_std, float* running_mean,
                                     float* running_var) {
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
  finish_batch_stats(channel_mean.data(), squared_deviation.data(), channels, m, momentum, eps, mean, inv_std,
                     running_mean, running_var);
}

void batchnorm_backward_reference(const float* x, const float* grad_y, const float* mean, const float* inv_std,
                                  const float* weight, bool training, float* grad_x, float* grad_weight,
                                  float* grad_bias, int64_t batch, int64_t channels, int64_t spatial) {
  const bool need_sums = training ? grad_x || grad_weight || grad_bias : grad_weight || grad_bias;
  std::vector<ReferenceBackwardSums> sums(static_cast<std::size_t>(channels));
  if (need_sums) {
    per_channel_sums(batch, channels, spatial, sums.data(), [&](int64_t n, int64_t c) {
      const float* gy = grad_y + (n * channels + c) * spatial;
      const float* xp = x + (n * channels + c) * spatial;
      const double mu = mean[c], s_inv = inv_std[c];
      ReferenceBackwardSums s;
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
  batchnorm_input_grad(x, grad_y, mean, inv_std, weight, training, grad_x, batch, channels, spatial,
                       [&](int64_t c) {
                         return SumPair{sums[static_cast<std::size_t>(c)].grad_y,
                                        sums[static_cast<std::size_t>(c)].grad_y_xhat};
                       });
}

}  // namespace engine::cpu
