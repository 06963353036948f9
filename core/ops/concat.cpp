// concat: joins tensors along one dimension (torch.cat). The UNet joins its
// skip connection and the upsampled path along the channel dim:
// concat({skip, up}, 1) with [N, C1, H, W] and [N, C2, H, W] -> [N, C1 + C2, H, W].
// Kernels: kernels/cpu/concat.h.
#include <string>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/cpu/concat.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/concat.h"
#endif

namespace engine {
namespace {

std::string input_name(std::size_t k) { return "tensors[" + std::to_string(k) + "]"; }

}  // namespace

Tensor concat(const std::vector<Tensor>& tensors, int64_t dim) {
  ENGINE_CHECK(!tensors.empty(), "concat: argument 'tensors': expected at least one tensor, got an empty list");
  for (std::size_t k = 0; k < tensors.size(); ++k) check_defined("concat", input_name(k).c_str(), tensors[k]);

  const Tensor& first = tensors[0];
  const int64_t rank = first.dim();
  ENGINE_CHECK(rank > 0, "concat: argument 'tensors[0]': a zero-dimensional tensor (shape []) cannot be concatenated");
  ENGINE_CHECK(dim >= -rank && dim < rank, "concat: argument 'dim': expected a value in [", -rank, ", ", rank - 1,
               "] for ", rank, "-d tensors, got ", dim);
  if (dim < 0) dim += rank;  // -1 is the last dimension

  // Every input: same dtype, device and rank as the first, and the same
  // extents everywhere except along dim.
  for (std::size_t k = 1; k < tensors.size(); ++k) {
    const Tensor& t = tensors[k];
    const std::string name = input_name(k);
    ENGINE_CHECK(t.dtype() == first.dtype(), "concat: argument '", name, "': expected dtype ",
                 dtype_name(first.dtype()), " (that of tensors[0]), got ", dtype_name(t.dtype()));
    check_same_device("concat", "tensors[0]", first, name.c_str(), t);
    bool compatible = t.dim() == rank;
    for (int64_t d = 0; compatible && d < rank; ++d) compatible = d == dim || t.size(d) == first.size(d);
    ENGINE_CHECK(compatible, "concat: argument '", name, "': expected the extents of tensors[0] (shape ",
                 shape_str(first.shape()), ") in every dimension except dim ", dim, ", got shape ",
                 shape_str(t.shape()));
  }

  // The 3-d view [outer, extent_k, inner] of every input (kernels/cpu/concat.h).
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= first.size(d);
  for (int64_t d = dim + 1; d < rank; ++d) inner *= first.size(d);
  std::vector<int64_t> extents;
  std::vector<const void*> sources;
  int64_t total = 0;
  for (const Tensor& t : tensors) {
    extents.push_back(t.size(dim));
    sources.push_back(t.raw_data());
    total += t.size(dim);
  }
  Shape out_shape = first.shape();
  out_shape[static_cast<std::size_t>(dim)] = total;

  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  if (first.device().is_cpu()) {
    cpu::concat_forward(sources.data(), extents.data(), static_cast<int64_t>(tensors.size()), out.raw_data(), outer,
                        inner, dtype_size(first.dtype()));
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::concat_forward(sources.data(), extents.data(), static_cast<int64_t>(tensors.size()), out.raw_data(), outer,
                         inner, dtype_size(first.dtype()));
#else
    cuda_not_implemented("concat");
#endif
  }

  if (autograd::needs_grad(tensors)) {
    // Each input's gradient is its slice of the output gradient.
    std::vector<Shape> shapes;
    std::vector<bool> wants_grad;
    for (const Tensor& t : tensors) {
      shapes.push_back(t.shape());
      wants_grad.push_back(t.requires_grad());
    }
    autograd::record("concat", out, tensors, [=](const Tensor& grad_out) {
      std::vector<Tensor> grads(shapes.size());
      std::vector<float*> destinations(shapes.size(), nullptr);
      for (std::size_t k = 0; k < shapes.size(); ++k) {
        if (!wants_grad[k]) continue;
        grads[k] = Tensor::zeros(shapes[k], DType::F32, grad_out.device());
        destinations[k] = grads[k].data<float>();
      }
      if (grad_out.device().is_cpu()) {
        cpu::concat_backward(grad_out.data<float>(), extents.data(), static_cast<int64_t>(shapes.size()),
                             destinations.data(), outer, inner);
      } else {
#ifdef ENGINE_WITH_CUDA
        cuda::concat_backward(grad_out.data<float>(), extents.data(), static_cast<int64_t>(shapes.size()),
                              destinations.data(), outer, inner);
#else
        cuda_not_implemented("concat");
#endif
      }
      return grads;
    });
  }
  return out;
}

}  // namespace engine
