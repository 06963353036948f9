// The layers: thin Modules around the ops of core/ops.h, with PyTorch's
// constructor arguments, parameter names, shapes and default initialisation.
//
//   layer              parameters (shape)                     buffers
//   Conv2d             weight [out, in, k, k], bias [out]      -
//   ConvTranspose2d    weight [in, out, k, k], bias [out]      -
//   BatchNorm2d        weight [C] (ones), bias [C] (zeros)     running_mean [C] (zeros),
//                                                              running_var [C] (ones),
//                                                              num_batches_tracked [] I64 (0)
//   Linear             weight [out, in], bias [out]            -
//   GELU, AvgPool2d    -                                       -
//   Sequential         its children, named "0", "1", ...
//
// Weights and biases of Conv2d, ConvTranspose2d and Linear are drawn from a
// Generator (the process-wide default unless one is given) as PyTorch's
// reset_parameters() does: see layers/init.h. Layers are built on the CPU;
// move them with Module::to(device).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "layers/module.h"

namespace engine {

// Applies its children in order: forward(x) = child_n(... child_1(child_0(x))).
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  std::string type_name() const override { return "Sequential"; }

  // Appends `module` under the next index name ("0", "1", ...) and returns it.
  template <typename M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    return register_module(std::to_string(size()), std::move(module));
  }
  std::size_t size() const { return named_children().size(); }
  const std::shared_ptr<Module>& operator[](std::size_t index) const;

  Tensor forward(const Tensor& x) override;
};

// nn.Conv2d(in, out, kernel, stride, padding, bias) with groups 1, dilation 1.
// x [N, in, H, W] -> [N, out, (H + 2p - k)/s + 1, (W + 2p - k)/s + 1].
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1, int64_t padding = 0,
         bool bias = true, Generator& gen = default_generator());
  std::string type_name() const override { return "Conv2d"; }
  Tensor forward(const Tensor& x) override;

  const int64_t in_channels, out_channels, kernel_size, stride, padding;
  Tensor weight;  // [out, in, k, k]
  Tensor bias;    // [out], undefined when built with bias = false
};

// nn.ConvTranspose2d(in, out, kernel, stride, padding, output_padding, bias),
// groups 1, dilation 1: the gradient of Conv2d with respect to its input,
// used as a learned upsampling.
// x [N, in, H, W] -> [N, out, (H - 1)s - 2p + k + output_padding, (same for W)].
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
                  int64_t padding = 0, int64_t output_padding = 0, bool bias = true,
                  Generator& gen = default_generator());
  std::string type_name() const override { return "ConvTranspose2d"; }
  Tensor forward(const Tensor& x) override;

  const int64_t in_channels, out_channels, kernel_size, stride, padding, output_padding;
  Tensor weight;  // [in, out, k, k]: PyTorch's layout (note: in first)
  Tensor bias;    // [out], undefined when built with bias = false
};

// nn.BatchNorm2d(C, eps, momentum) with affine and tracked running stats.
// Training mode: normalise each channel with the batch's mean and biased
// variance, update the running stats with `momentum` (running_var gets the
// unbiased variance), and count the batch in num_batches_tracked.
// Evaluation mode: normalise with the running stats; nothing changes.
// y = (x - mean) / sqrt(var + eps) * weight + bias; x, y [N, C, H, W].
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1);
  std::string type_name() const override { return "BatchNorm2d"; }
  Tensor forward(const Tensor& x) override;

  const int64_t num_features;
  const double eps, momentum;
  Tensor weight;               // [C], ones
  Tensor bias;                 // [C], zeros
  Tensor running_mean;         // [C], zeros
  Tensor running_var;          // [C], ones
  Tensor num_batches_tracked;  // [] I64, 0; +1 per training-mode forward
};

// nn.GELU(): the exact x * Phi(x), elementwise.
class GELU : public Module {
 public:
  std::string type_name() const override { return "GELU"; }
  Tensor forward(const Tensor& x) override;
};

// nn.AvgPool2d(kernel, stride) without padding; stride 0 means stride = kernel.
// x [N, C, H, W] -> [N, C, (H - k)/s + 1, (W - k)/s + 1].
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0);
  std::string type_name() const override { return "AvgPool2d"; }
  Tensor forward(const Tensor& x) override;

  const int64_t kernel_size, stride;  // stride already resolved (never 0)
};

// nn.Linear(in, out, bias): x [N, in] -> x W^T + b, [N, out].
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  std::string type_name() const override { return "Linear"; }
  Tensor forward(const Tensor& x) override;

  const int64_t in_features, out_features;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], undefined when built with bias = false
};

}  // namespace engine
