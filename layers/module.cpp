#include "layers/module.h"

#include <map>
#include <set>
#include <sstream>

#include "core/autograd.h"

namespace engine {

// --- The computation -----------------------------------------------------------------

Tensor Module::forward(const Tensor&) {
  throw Error(type_name() + "::forward(x): not implemented; this module either has no single-input "
              "forward or defines its own forward(...) with more inputs");
}

// --- Registration --------------------------------------------------------------------

void Module::check_new_name(const char* what, const std::string& name) const {
  ENGINE_CHECK(!name.empty(), type_name(), "::", what, ": the name must not be empty");
  ENGINE_CHECK(name.find('.') == std::string::npos, type_name(), "::", what, ": name '", name,
               "' must not contain '.' (dots separate the levels of a state-dict key)");
  auto taken = [&](const auto& list) {
    for (const auto& [existing, _] : list)
      if (existing == name) return true;
    return false;
  };
  ENGINE_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), type_name(), "::", what, ": name '",
               name, "' is already registered in this module");
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor) {
  check_new_name("register_parameter", name);
  ENGINE_CHECK(tensor.defined(), type_name(), "::register_parameter: '", name,
               "' is an undefined Tensor; leave an absent parameter (bias=false) unregistered instead");
  ENGINE_CHECK(tensor.dtype() == DType::F32, type_name(), "::register_parameter: '", name,
               "' must be F32, got ", tensor.str());
  ENGINE_CHECK(tensor.is_leaf(), type_name(), "::register_parameter: '", name,
               "' must be a leaf tensor (not the result of a recorded op); pass .detach()");
  tensor.set_requires_grad(true);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_new_name("register_buffer", name);
  ENGINE_CHECK(tensor.defined(), type_name(), "::register_buffer: '", name, "' is an undefined Tensor");
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::register_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name("register_module", name);
  ENGINE_CHECK(module != nullptr, type_name(), "::register_module: '", name, "' is a null module");
  ENGINE_CHECK(module.get() != this, type_name(), "::register_module: '", name,
               "' is the module itself; a module cannot contain itself");
  children_.emplace_back(name, std::move(module));
}

// --- Introspection -------------------------------------------------------------------

void Module::collect_parameters(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [name, tensor] : parameters_) out.emplace_back(prefix + name, tensor);
  for (const auto& [name, child] : children_) child->collect_parameters(prefix + name + ".", out);
}

void Module::collect_buffers(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [name, tensor] : buffers_) out.emplace_back(prefix + name, tensor);
  for (const auto& [name, child] : children_) child->collect_buffers(prefix + name + ".", out);
}

// PyTorch's order: a module's own parameters, its own buffers, then each child.
void Module::collect_state(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [name, tensor] : parameters_) out.emplace_back(prefix + name, tensor);
  for (const auto& [name, tensor] : buffers_) out.emplace_back(prefix + name, tensor);
  for (const auto& [name, child] : children_) child->collect_state(prefix + name + ".", out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect_parameters("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out.push_back(tensor);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect_buffers("", out);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t total = 0;
  for (const auto& [name, tensor] : named_parameters()) total += tensor.numel();
  return total;
}

// --- State dict ----------------------------------------------------------------------

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect_state("", out);
  return out;
}

namespace {

std::string quoted_list(const std::vector<std::string>& keys) {
  std::string out;
  for (std::size_t i = 0; i < keys.size(); ++i) out += (i ? ", \"" : "\"") + keys[i] + "\"";
  return out;
}

}  // namespace

LoadStateDictResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  // 1. Check everything, collecting every problem; write nothing yet.
  std::map<std::string, const Tensor*> incoming;
  std::vector<std::string> problems;
  for (const auto& [key, tensor] : state) {
    if (!incoming.emplace(key, &tensor).second) problems.push_back("duplicate key \"" + key + "\" in the state dict");
    else if (!tensor.defined()) problems.push_back("key \"" + key + "\" holds an undefined Tensor");
  }

  const NamedTensors own = state_dict();
  LoadStateDictResult result;
  std::set<std::string> own_keys;
  std::vector<std::pair<Tensor, const Tensor*>> copies;  // destination, source
  for (const auto& [key, destination] : own) {
    own_keys.insert(key);
    auto found = incoming.find(key);
    if (found == incoming.end()) {
      result.missing_keys.push_back(key);
      continue;
    }
    const Tensor& source = *found->second;
    if (!source.defined()) continue;  // reported above
    if (source.shape() != destination.shape()) {
      problems.push_back("size mismatch for " + key + ": the state dict has shape " + shape_str(source.shape()) +
                         ", the module has shape " + shape_str(destination.shape()));
    } else if (source.dtype() != destination.dtype()) {
      problems.push_back("dtype mismatch for " + key + ": the state dict has " + dtype_name(source.dtype()) +
                         ", the module has " + dtype_name(destination.dtype()));
    } else {
      copies.emplace_back(destination, &source);
    }
  }
  for (const auto& [key, tensor] : state)
    if (!own_keys.count(key)) result.unexpected_keys.push_back(key);

  if (strict) {
    if (!result.missing_keys.empty())
      problems.insert(problems.begin(), "missing key(s): " + quoted_list(result.missing_keys));
    if (!result.unexpected_keys.empty())
      problems.insert(problems.begin() + (result.missing_keys.empty() ? 0 : 1),
                      "unexpected key(s): " + quoted_list(result.unexpected_keys));
  }
  if (!problems.empty()) {
    std::ostringstream message;
    message << "load_state_dict: error(s) loading a state dict into " << type_name()
            << " (nothing was loaded):";
    for (const std::string& problem : problems) message << "\n  " << problem;
    throw Error(message.str());
  }

  // 2. All checks passed: copy the values in place (the destination keeps its
  // device; copy_ moves bytes across devices as needed; not recorded).
  autograd::NoGradGuard no_grad;
  for (auto& [destination, source] : copies) destination.copy_(*source);
  return result;
}

void Module::save(const std::string& path) const { save_safetensors(path, state_dict()); }

LoadStateDictResult Module::load(const std::string& path, bool strict) {
  const SafetensorsContents contents = load_safetensors(path);
  try {
    return load_state_dict(contents.tensors, strict);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + "\n  (loading file " + path + ")");
  }
}

// --- Modes and placement -----------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

namespace {

// Re-points the tensor's storage at a copy on `device`; the TensorImpl (and
// with it every handle) stays the same. See Module::to.
void move_storage_in_place(const Tensor& tensor, Device device) {
  if (tensor.device() == device) return;
  const Tensor moved = tensor.detach().to(device);  // fresh storage, offset 0
  tensor.impl().storage = moved.impl().storage;
  tensor.impl().offset = moved.impl().offset;
}

}  // namespace

void Module::to(Device device) {
  for (auto& [name, tensor] : parameters_) {
    move_storage_in_place(tensor, device);
    if (tensor.grad().defined()) move_storage_in_place(tensor.grad(), device);
  }
  for (auto& [name, tensor] : buffers_) move_storage_in_place(tensor, device);
  for (auto& [name, child] : children_) child->to(device);
}

void Module::zero_grad() {
  for (auto& [name, tensor] : named_parameters()) tensor.zero_grad();
}

}  // namespace engine
