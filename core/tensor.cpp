#include "core/tensor.h"

#include <algorithm>
#include <cstring>

#include "core/autograd.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/runtime.h"
#endif

namespace engine {
namespace {

void check_shape_valid(const Shape& shape) {
  for (int64_t extent : shape)
    ENGINE_CHECK(extent >= 0, "Tensor: shape ", shape_str(shape), " has a negative extent");
}

// Copies `bytes` between any two devices.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef ENGINE_WITH_CUDA
  if (dst_device.is_cuda() && src_device.is_cpu()) return cuda::copy_host_to_device(dst, src, bytes, dst_device.index);
  if (dst_device.is_cpu() && src_device.is_cuda()) return cuda::copy_device_to_host(dst, src, bytes, src_device.index);
  ENGINE_CHECK(dst_device == src_device, "copy between ", src_device.str(), " and ", dst_device.str(),
               " is not supported; go through the CPU");
  cuda::copy_device_to_device(dst, src, bytes, dst_device.index);
#else
  throw Error("copy to/from " + (dst_device.is_cpu() ? src_device : dst_device).str() +
              ": this build has no CUDA backend");
#endif
}

}  // namespace

// --- Factories ----------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape_valid(shape);
#ifdef ENGINE_WITH_CUDA
  // A missing GPU is a user error with a remedy: say so, and how to run on the CPU.
  if (device.is_cuda()) cuda::require_device(device.index);
#endif
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::ones(const Shape& shape, Device device) { return full(shape, 1.0f, device); }

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, DType::F32, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(float value, Device device) { return full({}, value, device); }

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  check_shape_valid(shape);
  ENGINE_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector: ",
               values.size(), " values do not fill shape ", shape_str(shape), " (", shape_numel(shape),
               " elements)");
  Tensor t = empty(shape, DType::F32, device);
  copy_bytes(t.raw_data(), device, values.data(), Device::cpu(), t.nbytes());
  return t;
}

Tensor Tensor::from_vector_i64(const std::vector<int64_t>& values, const Shape& shape, Device device) {
  check_shape_valid(shape);
  ENGINE_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector_i64: ",
               values.size(), " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, DType::I64, device);
  copy_bytes(t.raw_data(), device, values.data(), Device::cpu(), t.nbytes());
  return t;
}

Tensor Tensor::zeros_like(const Tensor& other) { return zeros(other.shape(), other.dtype(), other.device()); }
Tensor Tensor::empty_like(const Tensor& other) { return empty(other.shape(), other.dtype(), other.device()); }

// --- Metadata -------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const {
  const int64_t rank = dim();
  const int64_t index = d < 0 ? d + rank : d;
  ENGINE_CHECK(index >= 0 && index < rank, "Tensor::size: dimension ", d, " out of range for shape ",
               shape_str(shape()));
  return shape()[static_cast<std::size_t>(index)];
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  return "Tensor(shape " + shape_str(shape()) + ", " + dtype_name(dtype()) + ", " + device().str() + ")";
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + impl().offset * static_cast<int64_t>(dtype_size(dtype()));
}

// --- Views and copies ------------------------------------------------------------

Tensor Tensor::reshape(const Shape& new_shape) const {
  Shape resolved = new_shape;
  int64_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      ENGINE_CHECK(inferred < 0, "reshape: at most one extent may be -1, got ", shape_str(new_shape));
      inferred = static_cast<int>(i);
    } else {
      ENGINE_CHECK(resolved[i] >= 0, "reshape: negative extent in ", shape_str(new_shape));
      known *= resolved[i];
    }
  }
  if (inferred >= 0) {
    ENGINE_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer -1 in ", shape_str(new_shape),
                 " from a tensor of shape ", shape_str(shape()));
    resolved[static_cast<std::size_t>(inferred)] = numel() / known;
  }
  ENGINE_CHECK(shape_numel(resolved) == numel(), "reshape: shape ", shape_str(new_shape), " (",
               shape_numel(resolved), " elements) does not match tensor of shape ", shape_str(shape()), " (",
               numel(), " elements)");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = resolved;
  impl->dtype = dtype();
  impl->storage = this->impl().storage;
  impl->offset = this->impl().offset;
  Tensor out(std::move(impl));
  if (autograd::needs_grad({this})) {
    const Shape input_shape = shape();
    autograd::record("reshape", out, {*this}, [input_shape](const Tensor& grad) {
      return std::vector<Tensor>{grad.reshape(input_shape)};
    });
  }
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape();
  impl->dtype = dtype();
  impl->storage = this->impl().storage;
  impl->offset = this->impl().offset;
  return Tensor(std::move(impl));
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = empty(shape(), dtype(), target);
  out.copy_(*this);
  return out;
}

void Tensor::copy_(const Tensor& src) {
  ENGINE_CHECK(src.shape() == shape() && src.dtype() == dtype(), "copy_: source ", src.str(),
               " does not match destination ", str());
  copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
}

void Tensor::fill_(float value) {
  ENGINE_CHECK(dtype() == DType::F32, "fill_: expected an F32 tensor, got ", str());
  if (device().is_cpu()) {
    std::fill_n(data<float>(), numel(), value);
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::DeviceGuard guard(device().index);  // the kernel runs on this device's stream
    cuda::fill(data<float>(), value, numel());
#else
    std::vector<float> host(static_cast<std::size_t>(numel()), value);
    copy_bytes(raw_data(), device(), host.data(), Device::cpu(), nbytes());
#endif
  }
}

void Tensor::zero_() {
  if (device().is_cpu()) {
    std::memset(raw_data(), 0, nbytes());
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::memset_zero(raw_data(), nbytes(), device().index);
#endif
  }
}

std::vector<float> Tensor::to_vector() const {
  ENGINE_CHECK(dtype() == DType::F32, "to_vector: expected an F32 tensor, got ", str());
  std::vector<float> out(static_cast<std::size_t>(numel()));
  copy_bytes(out.data(), Device::cpu(), raw_data(), device(), nbytes());
  return out;
}

std::vector<int64_t> Tensor::to_vector_i64() const {
  ENGINE_CHECK(dtype() == DType::I64, "to_vector_i64: expected an I64 tensor, got ", str());
  std::vector<int64_t> out(static_cast<std::size_t>(numel()));
  copy_bytes(out.data(), Device::cpu(), raw_data(), device(), nbytes());
  return out;
}

float Tensor::item() const {
  ENGINE_CHECK(numel() == 1, "item: expected a one-element tensor, got shape ", shape_str(shape()));
  return to_vector()[0];
}

// --- Autograd ------------------------------------------------------------------------

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  ENGINE_CHECK(is_leaf() || requires_grad, "set_requires_grad(false) on a non-leaf; use detach()");
  ENGINE_CHECK(!requires_grad || dtype() == DType::F32, "set_requires_grad: only F32 tensors can require grad, got ",
               str());
  impl().requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& grad) {
  if (!grad.defined()) {
    impl().grad.reset();
    return;
  }
  ENGINE_CHECK(grad.shape() == shape() && grad.device() == device(), "set_grad: gradient ", grad.str(),
               " does not match tensor ", str());
  impl().grad = grad.impl_ptr();
}

void Tensor::zero_grad() { impl().grad.reset(); }

void Tensor::backward() const {
  ENGINE_CHECK(numel() == 1, "backward: expected a one-element (scalar) tensor to start from, got shape ",
               shape_str(shape()), "; reduce it first (sum, mean, a loss)");
  autograd::backward(*this, Tensor::ones(shape(), device()));
}

// --- Argument checks -----------------------------------------------------------------

void check_defined(const char* op, const char* arg, const Tensor& t) {
  ENGINE_CHECK(t.defined(), op, ": argument '", arg, "': expected a tensor, got an undefined Tensor");
}

void check_float32(const char* op, const char* arg, const Tensor& t) {
  check_defined(op, arg, t);
  ENGINE_CHECK(t.dtype() == DType::F32, op, ": argument '", arg, "': expected dtype F32, got ",
               dtype_name(t.dtype()));
}

void check_dim(const char* op, const char* arg, const Tensor& t, int64_t dim, const char* layout) {
  check_defined(op, arg, t);
  ENGINE_CHECK(t.dim() == dim, op, ": argument '", arg, "': expected ", dim, "-d tensor ", layout,
               ", got shape ", shape_str(t.shape()));
}

void check_shape(const char* op, const char* arg, const Tensor& t, const Shape& expected) {
  check_defined(op, arg, t);
  ENGINE_CHECK(t.shape() == expected, op, ": argument '", arg, "': expected shape ", shape_str(expected),
               ", got ", shape_str(t.shape()));
}

void check_same_device(const char* op, const char* arg_a, const Tensor& a, const char* arg_b, const Tensor& b) {
  ENGINE_CHECK(a.device() == b.device(), op, ": arguments '", arg_a, "' and '", arg_b,
               "' must be on the same device, got ", a.device().str(), " and ", b.device().str());
}

}  // namespace engine
