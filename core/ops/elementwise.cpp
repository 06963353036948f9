// add, sub, mul (with the documented broadcasting), scale, add_scalar, accumulate_.
#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/cpu/elementwise.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/elementwise.h"
#endif

namespace engine {
namespace {

using cpu::BroadcastOperand;

// How two operand shapes line up as [rows, cols] matrices (see elementwise.h).
struct BroadcastPlan {
  Shape out_shape;
  int64_t rows = 1;
  int64_t cols = 1;
  BroadcastOperand a{0, 0};
  BroadcastOperand b{0, 0};
};

bool is_scalar_like(const Shape& s) { return shape_numel(s) == 1; }

// True when `small` is `big` with trailing extents set to 1: [N,C,1,1] vs [N,C,H,W].
// Returns the number of leading extents that agree (the rows).
bool is_row_broadcast(const Shape& small, const Shape& big, int64_t& rows, int64_t& cols) {
  if (small.size() != big.size()) return false;
  std::size_t k = 0;
  while (k < big.size() && small[k] == big[k]) ++k;
  for (std::size_t i = k; i < small.size(); ++i)
    if (small[i] != 1) return false;
  rows = 1;
  for (std::size_t i = 0; i < k; ++i) rows *= big[i];
  cols = 1;
  for (std::size_t i = k; i < big.size(); ++i) cols *= big[i];
  return true;
}

BroadcastPlan plan_broadcast(const char* op, const Tensor& a, const Tensor& b) {
  BroadcastPlan plan;
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  const BroadcastOperand full_a{shape_numel(sa), 1};
  if (sa == sb) {
    plan.out_shape = sa;
    plan.cols = shape_numel(sa);
    plan.a = plan.b = {plan.cols, 1};
    return plan;
  }
  if (is_scalar_like(sb) && (!is_scalar_like(sa) || sa.size() >= sb.size())) {
    plan.out_shape = sa;
    plan.cols = shape_numel(sa);
    plan.a = full_a;
    plan.b = {0, 0};
    return plan;
  }
  if (is_scalar_like(sa)) {
    plan.out_shape = sb;
    plan.cols = shape_numel(sb);
    plan.a = {0, 0};
    plan.b = {plan.cols, 1};
    return plan;
  }
  if (is_row_broadcast(sb, sa, plan.rows, plan.cols)) {
    plan.out_shape = sa;
    plan.a = {plan.cols, 1};
    plan.b = {1, 0};
    return plan;
  }
  if (is_row_broadcast(sa, sb, plan.rows, plan.cols)) {
    plan.out_shape = sb;
    plan.a = {1, 0};
    plan.b = {plan.cols, 1};
    return plan;
  }
  throw Error(std::string(op) + ": cannot broadcast shapes " + shape_str(sa) + " and " + shape_str(sb) +
              "; supported: equal shapes, a one-element operand, or [d0..dk,1..1] against [d0..dk,e..f]");
}

enum class BinaryKind { Add, Sub, Mul };

Tensor binary(const char* op, BinaryKind kind, const Tensor& a, const Tensor& b) {
  check_float32(op, "a", a);
  check_float32(op, "b", b);
  check_same_device(op, "a", a, "b", b);
  const BroadcastPlan plan = plan_broadcast(op, a, b);
  Tensor out = Tensor::empty(plan.out_shape, DType::F32, a.device());
  if (a.device().is_cpu()) {
    switch (kind) {
      case BinaryKind::Add: cpu::add_forward(a.data<float>(), plan.a, b.data<float>(), plan.b, out.data<float>(), plan.rows, plan.cols); break;
      case BinaryKind::Sub: cpu::sub_forward(a.data<float>(), plan.a, b.data<float>(), plan.b, out.data<float>(), plan.rows, plan.cols); break;
      case BinaryKind::Mul: cpu::mul_forward(a.data<float>(), plan.a, b.data<float>(), plan.b, out.data<float>(), plan.rows, plan.cols); break;
    }
  } else {
#ifdef ENGINE_WITH_CUDA
    switch (kind) {
      case BinaryKind::Add: cuda::add_forward(a.data<float>(), plan.a, b.data<float>(), plan.b, out.data<float>(), plan.rows, plan.cols); break;
      case BinaryKind::Sub: cuda::sub_forward(a.data<float>(), plan.a, b.data<float>(), plan.b, out.data<float>(), plan.rows, plan.cols); break;
      case BinaryKind::Mul: cuda::mul_forward(a.data<float>(), plan.a, b.data<float>(), plan.b, out.data<float>(), plan.rows, plan.cols); break;
    }
#else
    cuda_not_implemented(op);
#endif
  }

  if (autograd::needs_grad({&a, &b})) {
    const bool grad_a = a.requires_grad(), grad_b = b.requires_grad();
    // mul needs both operands; add and sub need neither.
    Tensor saved_a = kind == BinaryKind::Mul ? a.detach() : Tensor();
    Tensor saved_b = kind == BinaryKind::Mul ? b.detach() : Tensor();
    const Shape shape_a = a.shape(), shape_b = b.shape();
    autograd::record(op, out, {a, b}, [=](const Tensor& grad_out) {
      std::vector<Tensor> grads(2);
      // The backend's broadcast_backward: cpu:: or cuda::, same arguments.
      auto broadcast_backward = [&](const float* factor, BroadcastOperand factor_layout, float sign, Tensor& grad,
                                    BroadcastOperand grad_layout) {
        if (grad_out.device().is_cpu()) {
          cpu::broadcast_backward(grad_out.data<float>(), factor, factor_layout, sign, grad.data<float>(), grad_layout,
                                  plan.rows, plan.cols);
        } else {
#ifdef ENGINE_WITH_CUDA
          cuda::broadcast_backward(grad_out.data<float>(), factor, factor_layout, sign, grad.data<float>(),
                                   grad_layout, plan.rows, plan.cols);
#else
          cuda_not_implemented(op);
#endif
        }
      };
      if (grad_a) {
        grads[0] = Tensor::zeros(shape_a, DType::F32, grad_out.device());
        const float* factor = kind == BinaryKind::Mul ? saved_b.data<float>() : nullptr;
        broadcast_backward(factor, plan.b, 1.0f, grads[0], plan.a);
      }
      if (grad_b) {
        grads[1] = Tensor::zeros(shape_b, DType::F32, grad_out.device());
        const float* factor = kind == BinaryKind::Mul ? saved_a.data<float>() : nullptr;
        const float sign = kind == BinaryKind::Sub ? -1.0f : 1.0f;
        broadcast_backward(factor, plan.a, sign, grads[1], plan.b);
      }
      return grads;
    });
  }
  return out;
}

Tensor affine(const char* op, const Tensor& a, float factor, float offset) {
  check_float32(op, "a", a);
  Tensor out = Tensor::empty_like(a);
  if (a.device().is_cpu()) {
    cpu::affine_forward(a.data<float>(), factor, offset, out.data<float>(), a.numel());
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::affine_forward(a.data<float>(), factor, offset, out.data<float>(), a.numel());
#else
    cuda_not_implemented(op);
#endif
  }
  if (autograd::needs_grad({&a})) {
    autograd::record(op, out, {a}, [op, factor](const Tensor& grad_out) {
      Tensor grad = Tensor::zeros_like(grad_out);
      if (grad_out.device().is_cpu()) {
        cpu::affine_backward(grad_out.data<float>(), factor, grad.data<float>(), grad.numel());
      } else {
#ifdef ENGINE_WITH_CUDA
        cuda::affine_backward(grad_out.data<float>(), factor, grad.data<float>(), grad.numel());
#else
        cuda_not_implemented(op);
#endif
      }
      return std::vector<Tensor>{grad};
    });
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", BinaryKind::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", BinaryKind::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary("mul", BinaryKind::Mul, a, b); }
Tensor scale(const Tensor& a, float factor) { return affine("scale", a, factor, 0.0f); }
Tensor add_scalar(const Tensor& a, float value) { return affine("add_scalar", a, 1.0f, value); }

void accumulate_(Tensor& dst, const Tensor& src) {
  check_float32("accumulate_", "dst", dst);
  check_float32("accumulate_", "src", src);
  check_same_device("accumulate_", "dst", dst, "src", src);
  check_shape("accumulate_", "src", src, dst.shape());
  if (dst.device().is_cpu()) {
    cpu::accumulate(dst.data<float>(), src.data<float>(), dst.numel());
  } else {
#ifdef ENGINE_WITH_CUDA
    cuda::accumulate(dst.data<float>(), src.data<float>(), dst.numel());
#else
    cuda_not_implemented("accumulate_");
#endif
  }
}

}  // namespace engine
