// BatchNorm2d on the GPU. x [N, C, HW]: element (n, c, s) sits at
// (n * C + c) * HW + s, so each (n, c) plane is HW contiguous floats.
//
// Kernels, in the order a training forward + backward runs them:
//   channel_sums_kernel<1, MeanTerm>          grid (chunks, C): partial sums of x
//   mean_kernel                               one thread per channel: mean in double
//   channel_sums_kernel<1, DeviationTerm>     partial sums of (x - mean)^2
//   stats_kernel                              mean, inv_std, running statistics
//   apply_kernel                              one thread per element
//   channel_sums_kernel<2, BackwardTerm>      sum g and sum g * xhat per channel
//   backward_sums_kernel                      grad_weight, grad_bias, the two channel means
//   grad_x_kernel                             one thread per element
// The fused BN + GELU variants are the same kernels with a GELU in apply_kernel
// and, in the backward, a gradient source that multiplies by gelu'(z).
#include "kernels/cuda/batchnorm.h"

#include "kernels/common/batchnorm_math.h"
#include "kernels/common/gelu_math.h"
#include "kernels/cuda/launch.cuh"

namespace engine::cuda {
namespace {

constexpr int64_t kMaxChunksPerChannel = 32;
constexpr int64_t kMaxGridY = 65535;  // CUDA's limit on gridDim.y; larger C is covered by a loop

// How channel c's values are split among blocks: by sample, `chunks` groups
// of `planes_per_chunk` consecutive samples (the last group may be shorter).
struct Partition {
  int64_t chunks;
  int64_t planes_per_chunk;
};

Partition partition_for(int64_t batch) {
  const int64_t wanted = std::clamp<int64_t>(batch, 1, kMaxChunksPerChannel);
  const int64_t per_chunk = std::max<int64_t>(1, ceil_div(batch, wanted));
  return {std::max<int64_t>(1, ceil_div(batch, per_chunk)), per_chunk};
}

// partials[(c * chunks + chunk) * kSums + k] = sum over the chunk's planes of
// channel c of the k-th quantity that term(index, c, sums) adds to sums[k].
template <int kSums, typename Term>
__global__ void channel_sums_kernel(Term term, int64_t batch, int64_t channels, int64_t spatial,
                                    int64_t planes_per_chunk, double* partials) {
  const int64_t chunk = blockIdx.x, chunks = gridDim.x;
  const int64_t n_begin = chunk * planes_per_chunk;
  const int64_t n_end = n_begin + planes_per_chunk < batch ? n_begin + planes_per_chunk : batch;
  for (int64_t c = blockIdx.y; c < channels; c += gridDim.y) {
    double sums[kSums];
    for (int k = 0; k < kSums; ++k) sums[k] = 0.0;
    for (int64_t n = n_begin; n < n_end; ++n) {
      const int64_t plane = (n * channels + c) * spatial;
      for (int64_t s = threadIdx.x; s < spatial; s += blockDim.x) term(plane + s, c, sums);
    }
    for (int k = 0; k < kSums; ++k) sums[k] = block_sum(sums[k]);
    if (threadIdx.x == 0)
      for (int k = 0; k < kSums; ++k) partials[(c * chunks + chunk) * kSums + k] = sums[k];
  }
}

template <int kSums, typename Term>
void launch_channel_sums(const Term& term, int64_t batch, int64_t channels, int64_t spatial, const Partition& p,
                         double* partials) {
  const dim3 grid(static_cast<unsigned>(p.chunks), static_cast<unsigned>(std::min(channels, kMaxGridY)));
  channel_sums_kernel<kSums><<<grid, kThreads, 0, current_stream()>>>(term, batch, channels, spatial,
                                                                      p.planes_per_chunk, partials);
  CUDA_CHECK_LAUNCH();
}

struct MeanTerm {  // sum x
  const float* x;
  __device__ void operator()(int64_t i, int64_t, double* sums) const { sums[0] += x[i]; }
};

struct DeviationTerm {  // sum (x - mean)^2, mean in double
  const float* x;
  const double* mean;
  __device__ void operator()(int64_t i, int64_t c, double* sums) const {
    const double d = x[i] - mean[c];
    sums[0] += d * d;
  }
};

// Sum over chunks of partials[(c * chunks + chunk) * kSums + k], in chunk order.
template <int kSums>
__device__ double chunk_total(const double* partials, int64_t chunks, int64_t c, int k) {
  double s = 0.0;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) s += partials[(c * chunks + chunk) * kSums + k];
  return s;
}

__global__ void mean_kernel(const double* partials, int64_t chunks, int64_t channels, double m, double* mean) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, c, channels) mean[c] = chunk_total<1>(partials, chunks, c, 0) / m;
}

// The same formulas, in double, as cpu::batchnorm_batch_stats.
__global__ void stats_kernel(const double* partials, int64_t chunks, int64_t channels, double m,
                             const double* channel_mean, double momentum, double eps, float* mean, float* inv_std,
                             float* running_mean, float* running_var) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, c, channels) {
    const double squared_deviation = chunk_total<1>(partials, chunks, c, 0);
    const double mu = channel_mean[c];
    const double biased_var = squared_deviation / m;
    const double unbiased_var = squared_deviation / (m - 1.0);
    mean[c] = static_cast<float>(mu);
    inv_std[c] = static_cast<float>(1.0 / sqrt(biased_var + eps));
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased_var);
  }
}

__global__ void running_stats_kernel(const float* running_mean, const float* running_var, int64_t channels,
                                     double eps, float* mean, float* inv_std) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, c, channels) {
    mean[c] = running_mean[c];
    inv_std[c] = static_cast<float>(1.0 / sqrt(static_cast<double>(running_var[c]) + eps));
  }
}

// Thread i owns element i; its channel is (i / HW) % C.
template <typename Index, bool kGelu>
__global__ void apply_kernel(const float* x, const float* mean, const float* inv_std, const float* weight,
                             const float* bias, float* y, Index n, Index channels, Index spatial) {
  ENGINE_GRID_STRIDE_LOOP(Index, i, n) {
    const Index c = (i / spatial) % channels;
    const float z = math::batchnorm_apply(x[i], mean[c], inv_std[c], weight[c], bias[c]);
    y[i] = kGelu ? math::gelu(z) : z;
  }
}

template <bool kGelu>
void launch_apply(const float* x, const float* mean, const float* inv_std, const float* weight, const float* bias,
                  float* y, int64_t batch, int64_t channels, int64_t spatial) {
  const int64_t n = batch * channels * spatial;
  if (n == 0) return;
  cudaStream_t stream = current_stream();
  if (fits_int32(n))
    apply_kernel<int32_t, kGelu><<<grid_for(n), kThreads, 0, stream>>>(
        x, mean, inv_std, weight, bias, y, static_cast<int32_t>(n), static_cast<int32_t>(channels),
        static_cast<int32_t>(spatial));
  else
    apply_kernel<int64_t, kGelu><<<grid_for(n), kThreads, 0, stream>>>(x, mean, inv_std, weight, bias, y, n, channels,
                                                                        spatial);
  CUDA_CHECK_LAUNCH();
}

// --- Backward ----------------------------------------------------------------
// A gradient source gives dL/d(BN output) at element i of channel c.

struct PlainGrad {  // unfused: grad_y itself
  const float* grad_y;
  __device__ float operator()(int64_t i, int64_t) const { return grad_y[i]; }
};

struct ThroughGeluGrad {  // fused: grad_y * gelu'(z), z = BN output recomputed from x
  const float* x;
  const float* grad_y;
  const float* mean;
  const float* inv_std;
  const float* weight;
  const float* bias;
  __device__ float operator()(int64_t i, int64_t c) const {
    const float z = math::batchnorm_apply(x[i], mean[c], inv_std[c], weight[c], bias[c]);
    return grad_y[i] * math::gelu_derivative(z);
  }
};

// sums[0] += g, sums[1] += g * xhat (xhat in double, as on the CPU).
template <typename GradSource>
struct BackwardTerm {
  const float* x;
  GradSource grad;
  const float* mean;
  const float* inv_std;
  __device__ void operator()(int64_t i, int64_t c, double* sums) const {
    const float g = grad(i, c);
    const double xhat = (x[i] - static_cast<double>(mean[c])) * static_cast<double>(inv_std[c]);
    sums[0] += g;
    sums[1] += g * xhat;
  }
};

// Per channel: grad_bias += sum g, grad_weight += sum g * xhat, and the two
// channel means of the training-mode input gradient:
//   mean_g = weight * sum g / m,   mean_g_xhat = weight * sum g * xhat / m.
__global__ void backward_sums_kernel(const double* partials, int64_t chunks, int64_t channels, double m,
                                     const float* weight, float* grad_weight, float* grad_bias, float* mean_g,
                                     float* mean_g_xhat) {
  ENGINE_GRID_STRIDE_LOOP(int64_t, c, channels) {
    const double sum_g = chunk_total<2>(partials, chunks, c, 0);
    const double sum_g_xhat = chunk_total<2>(partials, chunks, c, 1);
    if (grad_weight) grad_weight[c] += static_cast<float>(sum_g_xhat);
    if (grad_bias) grad_bias[c] += static_cast<float>(sum_g);
    mean_g[c] = static_cast<float>(weight[c] * sum_g / m);
    mean_g_xhat[c] = static_cast<float>(weight[c] * sum_g_xhat / m);
  }
}

template <typename Index, typename GradSource>
__global__ void grad_x_kernel(const float* x, GradSource grad, const float* mean, const float* inv_std,
                              const float* weight, bool training, const float* mean_g, const float* mean_g_xhat,
                              float* grad_x, Index n, Index channels, Index spatial) {
  ENGINE_GRID_STRIDE_LOOP(Index, i, n) {
    const Index c = (i / spatial) % channels;
    const float g = grad(i, c), w = weight[c], s = inv_std[c];
    if (training)
      grad_x[i] += math::batchnorm_input_grad_train(g, w, math::batchnorm_normalize(x[i], mean[c], s), s, mean_g[c],
                                                    mean_g_xhat[c]);
    else
      grad_x[i] += math::batchnorm_input_grad_eval(g, w, s);
  }
}

template <typename GradSource>
void backward(const float* x, const GradSource& grad, const float* mean, const float* inv_std, const float* weight,
              bool training, float* grad_x, float* grad_weight, float* grad_bias, int64_t batch, int64_t channels,
              int64_t spatial) {
  const int64_t n = batch * channels * spatial;
  if (channels == 0) return;
  const bool need_sums = training ? grad_x || grad_weight || grad_bias : grad_weight || grad_bias;
  cudaStream_t stream = current_stream();
  // mean_g [C] then mean_g_xhat [C].
  Scratch channel_means(static_cast<std::size_t>(2 * channels) * sizeof(float));
  float* mean_g = channel_means.as<float>();
  float* mean_g_xhat = mean_g + channels;
  if (need_sums) {
    const Partition p = partition_for(batch);
    Scratch partials(static_cast<std::size_t>(channels * p.chunks * 2) * sizeof(double));
    launch_channel_sums<2>(BackwardTerm<GradSource>{x, grad, mean, inv_std}, batch, channels, spatial, p,
                           partials.as<double>());
    backward_sums_kernel<<<grid_for(channels), kThreads, 0, stream>>>(
        partials.as<double>(), p.chunks, channels, static_cast<double>(batch * spatial), weight, grad_weight,
        grad_bias, mean_g, mean_g_xhat);
    CUDA_CHECK_LAUNCH();
  }
  if (!grad_x || n == 0) return;
  if (fits_int32(n))
    grad_x_kernel<int32_t><<<grid_for(n), kThreads, 0, stream>>>(
        x, grad, mean, inv_std, weight, training, mean_g, mean_g_xhat, grad_x, static_cast<int32_t>(n),
        static_cast<int32_t>(channels), static_cast<int32_t>(spatial));
  else
    grad_x_kernel<int64_t><<<grid_for(n), kThreads, 0, stream>>>(x, grad, mean, inv_std, weight, training, mean_g,
                                                                  mean_g_xhat, grad_x, n, channels, spatial);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void batchnorm_batch_stats(const float* x, int64_t batch, int64_t channels, int64_t spatial, double momentum,
                           double eps, float* mean, float* inv_std, float* running_mean, float* running_var) {
  if (channels == 0) return;
  const Partition p = partition_for(batch);
  const double m = static_cast<double>(batch * spatial);
  cudaStream_t stream = current_stream();
  Scratch channel_mean(static_cast<std::size_t>(channels) * sizeof(double));
  Scratch partials(static_cast<std::size_t>(channels * p.chunks) * sizeof(double));

  // Pass 1: the mean.
  launch_channel_sums<1>(MeanTerm{x}, batch, channels, spatial, p, partials.as<double>());
  mean_kernel<<<grid_for(channels), kThreads, 0, stream>>>(partials.as<double>(), p.chunks, channels, m,
                                                           channel_mean.as<double>());
  CUDA_CHECK_LAUNCH();
  // Pass 2: squared deviations from it (no cancellation, unlike E[x^2] - E[x]^2).
  launch_channel_sums<1>(DeviationTerm{x, channel_mean.as<double>()}, batch, channels, spatial, p,
                         partials.as<double>());
  stats_kernel<<<grid_for(channels), kThreads, 0, stream>>>(partials.as<double>(), p.chunks, channels, m,
                                                            channel_mean.as<double>(), momentum, eps, mean, inv_std,
                                                            running_mean, running_var);
  CUDA_CHECK_LAUNCH();
}

void batchnorm_running_stats(const float* running_mean, const float* running_var, int64_t channels, double eps,
                             float* mean, float* inv_std) {
  if (channels == 0) return;
  running_stats_kernel<<<grid_for(channels), kThreads, 0, current_stream()>>>(running_mean, running_var, channels, eps,
                                                                              mean, inv_std);
  CUDA_CHECK_LAUNCH();
}

void batchnorm_apply(const float* x, const float* mean, const float* inv_std, const float* weight,
                     const float* bias, float* y, int64_t batch, int64_t channels, int64_t spatial) {
  launch_apply<false>(x, mean, inv_std, weight, bias, y, batch, channels, spatial);
}

void batchnorm_backward(const float* x, const float* grad_y, const float* mean, const float* inv_std,
                        const float* weight, bool training, float* grad_x, float* grad_weight, float* grad_bias,
                        int64_t batch, int64_t channels, int64_t spatial) {
  backward(x, PlainGrad{grad_y}, mean, inv_std, weight, training, grad_x, grad_weight, grad_bias, batch, channels,
           spatial);
}

void batchnorm_gelu_apply(const float* x, const float* mean, const float* inv_std, const float* weight,
                          const float* bias, float* y, int64_t batch, int64_t channels, int64_t spatial) {
  launch_apply<true>(x, mean, inv_std, weight, bias, y, batch, channels, spatial);
}

void batchnorm_gelu_backward(const float* x, const float* grad_y, const float* mean, const float* inv_std,
                             const float* weight, const float* bias, bool training, float* grad_x,
                             float* grad_weight, float* grad_bias, int64_t batch, int64_t channels, int64_t spatial) {
  backward(x, ThroughGeluGrad{x, grad_y, mean, inv_std, weight, bias}, mean, inv_std, weight, training, grad_x,
           grad_weight, grad_bias, batch, channels, spatial);
}

}  // namespace engine::cuda
