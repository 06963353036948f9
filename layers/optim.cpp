#include "layers/optim.h"

#include <cmath>
#include <map>
#include <set>
#include <string>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "kernels/cpu/adam.h"
#ifdef ENGINE_WITH_CUDA
#include <cstring>

#include "kernels/cuda/adam.h"
#include "kernels/cuda/runtime.h"
#endif

namespace engine {

// --- Adam --------------------------------------------------------------------------------

#ifdef ENGINE_WITH_CUDA
namespace {

// The CUDA parameters of one step on one device, updated by ONE launch
// (kernels/cuda/adam.h): their pointers and their per-step constants.
struct CudaAdamBatch {
  std::vector<cuda::AdamTensor> tensors;
  std::vector<AdamStepConstants> constants;
};

// Uploads the batch's two arrays into one device buffer, [tensors][constants],
// and launches. The host arrays go through the driver's staging copy
// (copy_host_to_device returns once they may be reused), and the device buffer
// is released to the caching allocator right after the launch: safe, as any
// reuse is queued behind the kernel on the same stream.
void launch_cuda_adam(Device device, CudaAdamBatch& batch) {
  const int64_t count = static_cast<int64_t>(batch.tensors.size());
  const int64_t total_chunks = cuda::plan_adam_chunks(batch.tensors.data(), count);
  const std::size_t tensor_bytes = batch.tensors.size() * sizeof(cuda::AdamTensor);
  const std::size_t constant_bytes = batch.constants.size() * sizeof(AdamStepConstants);
  std::vector<unsigned char> packed(tensor_bytes + constant_bytes);
  std::memcpy(packed.data(), batch.tensors.data(), tensor_bytes);
  std::memcpy(packed.data() + tensor_bytes, batch.constants.data(), constant_bytes);
  static_assert(sizeof(cuda::AdamTensor) % alignof(AdamStepConstants) == 0, "constants follow the tensors aligned");

  const int64_t words = static_cast<int64_t>((packed.size() + sizeof(float) - 1) / sizeof(float));
  Tensor buffer = Tensor::empty({words}, DType::F32, device);  // 256-byte aligned: fine for both arrays
  cuda::DeviceGuard guard(device.index);
  cuda::copy_host_to_device(buffer.raw_data(), packed.data(), packed.size(), device.index);
  auto* base = static_cast<unsigned char*>(buffer.raw_data());
  cuda::adam_step_multi_tensor(reinterpret_cast<const cuda::AdamTensor*>(base), count,
                               reinterpret_cast<const AdamStepConstants*>(base + tensor_bytes), total_chunks);
}

}  // namespace
#endif

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : params_(std::move(params)), state_(params_.size()), lr_(lr), beta1_(beta1), beta2_(beta2), eps_(eps),
      weight_decay_(weight_decay) {
  // The same checks as torch.optim.Adam.
  ENGINE_CHECK(lr >= 0.0, "Adam: invalid learning rate ", lr, " (expected >= 0)");
  ENGINE_CHECK(eps >= 0.0, "Adam: invalid eps ", eps, " (expected >= 0)");
  ENGINE_CHECK(beta1 >= 0.0 && beta1 < 1.0, "Adam: invalid beta1 ", beta1, " (expected in [0, 1))");
  ENGINE_CHECK(beta2 >= 0.0 && beta2 < 1.0, "Adam: invalid beta2 ", beta2, " (expected in [0, 1))");
  ENGINE_CHECK(weight_decay >= 0.0, "Adam: invalid weight_decay ", weight_decay, " (expected >= 0)");
  std::set<const TensorImpl*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    ENGINE_CHECK(p.defined(), "Adam: parameter ", i, " is an undefined Tensor");
    ENGINE_CHECK(p.dtype() == DType::F32, "Adam: parameter ", i, " must be F32, got ", p.str());
    ENGINE_CHECK(p.is_leaf() && p.requires_grad(), "Adam: parameter ", i,
                 " must be a leaf that requires grad (register it with Module::register_parameter)");
    ENGINE_CHECK(seen.insert(&p.impl()).second, "Adam: parameter ", i,
                 " appears twice in the list; it would be updated twice per step");
  }
}

void Adam::set_lr(double lr) {
  ENGINE_CHECK(lr >= 0.0, "Adam::set_lr: invalid learning rate ", lr, " (expected >= 0)");
  lr_ = lr;
}

int64_t Adam::step_count(std::size_t index) const {
  ENGINE_CHECK(index < params_.size(), "Adam::step_count: index ", index, " out of range for ", params_.size(),
               " parameters");
  return state_[index].step;
}

void Adam::step() {
  autograd::NoGradGuard no_grad;
#ifdef ENGINE_WITH_CUDA
  std::map<int, CudaAdamBatch> cuda_batches;  // by device index: one launch per device
#endif
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Tensor& param = params_[i];
    const Tensor grad = param.grad();
    if (!grad.defined()) continue;  // not reached by backward: PyTorch skips it too
    ENGINE_CHECK(grad.shape() == param.shape() && grad.dtype() == DType::F32 && grad.device() == param.device(),
                 "Adam::step: gradient ", grad.str(), " of parameter ", i, " does not match the parameter ",
                 param.str());

    ParamState& s = state_[i];
    if (!s.exp_avg.defined()) {  // first update: m = v = 0, on the parameter's device
      s.exp_avg = Tensor::zeros_like(param);
      s.exp_avg_sq = Tensor::zeros_like(param);
    } else if (s.exp_avg.device() != param.device()) {  // the module was moved since
      s.exp_avg = s.exp_avg.to(param.device());
      s.exp_avg_sq = s.exp_avg_sq.to(param.device());
    }
    s.step += 1;

    // The per-step scalars, in double as PyTorch's Python code computes them.
    const double t = static_cast<double>(s.step);
    const double bias_correction1 = 1.0 - std::pow(beta1_, t);
    const double bias_correction2 = 1.0 - std::pow(beta2_, t);
    AdamStepConstants c;
    c.beta1 = static_cast<float>(beta1_);
    c.one_minus_beta1 = static_cast<float>(1.0 - beta1_);
    c.beta2 = static_cast<float>(beta2_);
    c.one_minus_beta2 = static_cast<float>(1.0 - beta2_);
    c.step_size = static_cast<float>(lr_ / bias_correction1);
    c.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
    c.eps = static_cast<float>(eps_);
    c.weight_decay = static_cast<float>(weight_decay_);

    if (param.device().is_cpu()) {
      cpu::adam_step(param.data<float>(), grad.data<float>(), s.exp_avg.data<float>(), s.exp_avg_sq.data<float>(),
                     param.numel(), c);
    } else {
#ifdef ENGINE_WITH_CUDA
      // Collected here, updated below by one multi-tensor launch per device.
      CudaAdamBatch& batch = cuda_batches[param.device().index];
      batch.tensors.push_back({param.data<float>(), grad.data<float>(), s.exp_avg.data<float>(),
                               s.exp_avg_sq.data<float>(), param.numel(), 0,
                               static_cast<int64_t>(batch.constants.size())});
      batch.constants.push_back(c);
#else
      cuda_not_implemented("adam_step");
#endif
    }
  }
#ifdef ENGINE_WITH_CUDA
  for (auto& [index, batch] : cuda_batches) launch_cuda_adam(Device::cuda(index), batch);
#endif
}

void Adam::zero_grad() {
  for (Tensor& param : params_) param.zero_grad();
}

NamedTensors Adam::state_dict() const {
  NamedTensors out;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const ParamState& s = state_[i];
    if (s.step == 0) continue;
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.emplace_back(prefix + "step", Tensor::from_vector_i64({s.step}, {}));
    out.emplace_back(prefix + "exp_avg", s.exp_avg);
    out.emplace_back(prefix + "exp_avg_sq", s.exp_avg_sq);
  }
  return out;
}

void Adam::load_state_dict(const NamedTensors& state) {
  // Parse "state.<i>.<field>" and check everything before changing anything.
  struct Entry {
    const Tensor* step = nullptr;
    const Tensor* exp_avg = nullptr;
    const Tensor* exp_avg_sq = nullptr;
  };
  std::map<std::size_t, Entry> entries;
  for (const auto& [key, tensor] : state) {
    const std::string prefix = "state.";
    const std::size_t dot = key.find('.', prefix.size());
    ENGINE_CHECK(key.rfind(prefix, 0) == 0 && dot != std::string::npos && dot > prefix.size() &&
                     key.find_first_not_of("0123456789", prefix.size()) == dot,
                 "Adam::load_state_dict: unexpected key \"", key, "\" (expected state.<index>.step|exp_avg|exp_avg_sq)");
    const std::size_t index = std::stoul(key.substr(prefix.size(), dot - prefix.size()));
    ENGINE_CHECK(index < params_.size(), "Adam::load_state_dict: key \"", key, "\" names parameter ", index,
                 " but the optimiser has ", params_.size(), " parameters");
    ENGINE_CHECK(tensor.defined(), "Adam::load_state_dict: key \"", key, "\" holds an undefined Tensor");
    const std::string field = key.substr(dot + 1);
    const Tensor& param = params_[index];
    Entry& entry = entries[index];
    const Tensor** slot = nullptr;
    if (field == "step") {
      ENGINE_CHECK(tensor.dtype() == DType::I64 && tensor.numel() == 1, "Adam::load_state_dict: \"", key,
                   "\" must be a one-element I64 tensor, got ", tensor.str());
      ENGINE_CHECK(tensor.to_vector_i64()[0] > 0, "Adam::load_state_dict: \"", key, "\" must be positive, got ",
                   tensor.to_vector_i64()[0]);
      slot = &entry.step;
    } else if (field == "exp_avg" || field == "exp_avg_sq") {
      ENGINE_CHECK(tensor.dtype() == DType::F32 && tensor.shape() == param.shape(), "Adam::load_state_dict: \"", key,
                   "\": expected F32 of shape ", shape_str(param.shape()), " (parameter ", index, "), got ",
                   tensor.str());
      slot = field == "exp_avg" ? &entry.exp_avg : &entry.exp_avg_sq;
    } else {
      throw Error("Adam::load_state_dict: unexpected key \"" + key + "\" (fields are step, exp_avg, exp_avg_sq)");
    }
    ENGINE_CHECK(*slot == nullptr, "Adam::load_state_dict: duplicate key \"", key, "\"");
    *slot = &tensor;
  }
  for (const auto& [index, entry] : entries)
    ENGINE_CHECK(entry.step && entry.exp_avg && entry.exp_avg_sq, "Adam::load_state_dict: parameter ", index,
                 " needs all of state.", index, ".step, .exp_avg and .exp_avg_sq");

  // Replace the state; parameters absent from `state` start afresh.
  std::vector<ParamState> fresh(params_.size());
  for (const auto& [index, entry] : entries) {
    const Device device = params_[index].device();
    fresh[index].step = entry.step->to_vector_i64()[0];
    fresh[index].exp_avg = entry.exp_avg->to(device).clone();
    fresh[index].exp_avg_sq = entry.exp_avg_sq->to(device).clone();
  }
  state_ = std::move(fresh);
}

// --- ExponentialLR -------------------------------------------------------------------------

ExponentialLR::ExponentialLR(Adam& optimizer, double gamma)
    : optimizer_(optimizer), gamma_(gamma), initial_lr_(optimizer.lr()) {
  ENGINE_CHECK(gamma > 0.0, "ExponentialLR: gamma must be positive, got ", gamma);
}

void ExponentialLR::step() {
  last_epoch_ += 1;
  optimizer_.set_lr(optimizer_.lr() * gamma_);
}

void ExponentialLR::set_last_epoch(int64_t epoch) {
  ENGINE_CHECK(epoch >= 0, "ExponentialLR::set_last_epoch: epoch must be >= 0, got ", epoch);
  double lr = initial_lr_;
  for (int64_t e = 0; e < epoch; ++e) lr *= gamma_;
  last_epoch_ = epoch;
  optimizer_.set_lr(lr);
}

}  // namespace engine
