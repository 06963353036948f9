// Tensor: a contiguous, row-major block of elements with a shape, a dtype and
// a device, sharing its storage with its views (reshape/view/detach make no
// copies). A Tensor is a cheap handle (one shared_ptr); copying it aliases.
//
// Autograd fields live on the tensor too: requires_grad, the accumulated
// .grad of a leaf, and grad_fn, the node of the tape that produced a
// non-leaf. See core/autograd.h and docs/autograd.md.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace engine {

namespace autograd {
struct Node;
}

struct TensorImpl {
  Shape shape;
  DType dtype = DType::F32;
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements, into storage

  // Autograd.
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;  // null for leaves
  std::shared_ptr<TensorImpl> grad;         // accumulated gradient of a leaf
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- Factories ------------------------------------------------------------
  // Uninitialised memory.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu());
  static Tensor scalar(float value, Device device = Device::cpu());  // shape []
  // Copies `values` (numel must match shape) onto `device`.
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::cpu());
  static Tensor from_vector_i64(const std::vector<int64_t>& values, const Shape& shape,
                                Device device = Device::cpu());
  static Tensor zeros_like(const Tensor& other);
  static Tensor empty_like(const Tensor& other);

  // --- Metadata -------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  // Extent of dimension d; negative d counts from the end.
  int64_t size(int64_t d) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype()); }
  std::string str() const;  // "Tensor(shape [2, 3], F32, cpu)"

  // Typed pointer to the first element (on the tensor's device). Throws if
  // T does not match the dtype.
  template <typename T> T* data() const {
    ENGINE_CHECK(dtype_of<T>::value == dtype(), "Tensor::data: requested ", dtype_name(dtype_of<T>::value),
                 " pointer of a ", dtype_name(dtype()), " tensor");
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // --- Views and copies -----------------------------------------------------
  // Same storage, new shape (numel must agree; one extent may be -1).
  // Recorded by autograd: the gradient is reshaped back.
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const { return reshape(shape); }
  // Same storage, cut from the graph: requires_grad false, no grad_fn.
  Tensor detach() const;
  // A new tensor with its own storage and the same values (not recorded).
  Tensor clone() const;
  // A copy on `device` (the same tensor, aliased, if already there). Not recorded.
  Tensor to(Device device) const;
  // Copies values from `src` (same shape and dtype, any device) into this tensor.
  void copy_(const Tensor& src);
  void fill_(float value);
  void zero_();

  // Host copies of the values (from any device).
  std::vector<float> to_vector() const;
  std::vector<int64_t> to_vector_i64() const;
  // The single value of a one-element float tensor.
  float item() const;

  // --- Autograd ---------------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  // Marks a leaf as a parameter/input whose gradient .grad() accumulates.
  Tensor& set_requires_grad(bool requires_grad = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  // The accumulated gradient of a leaf (undefined until a backward reaches it).
  Tensor grad() const;
  void set_grad(const Tensor& grad);
  // Drops the accumulated gradient (PyTorch's set_to_none=True).
  void zero_grad();
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  // Backpropagates from this one-element tensor (seed gradient 1).
  void backward() const;

  // --- Identity ---------------------------------------------------------------
  TensorImpl& impl() const {
    ENGINE_CHECK(impl_ != nullptr, "use of an undefined Tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same_storage(const Tensor& other) const { return impl().storage == other.impl().storage; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Checks used by op entry points; each throws with op, argument, expected, actual.
void check_defined(const char* op, const char* arg, const Tensor& t);
void check_float32(const char* op, const char* arg, const Tensor& t);
void check_dim(const char* op, const char* arg, const Tensor& t, int64_t dim, const char* layout);
void check_shape(const char* op, const char* arg, const Tensor& t, const Shape& expected);
void check_same_device(const char* op, const char* arg_a, const Tensor& a, const char* arg_b, const Tensor& b);

}  // namespace engine
