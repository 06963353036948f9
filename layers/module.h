// Module: the base of every layer and model, PyTorch's nn.Module in C++.
//
// A module owns three ordered lists, filled by its constructor:
//   parameters  tensors the optimiser trains (registered with requires_grad)
//   buffers     state that is saved but not trained (BatchNorm's running stats)
//   children    sub-modules, each under a name
// From them follow, recursively and with PyTorch's dotted names:
//   named_parameters()  "block.0.weight", ... : the module's own parameters,
//                       then each child's, in registration order
//   state_dict()        per module: own parameters, own buffers, then each
//                       child recursively; exactly the keys and the order of
//                       torch's state_dict(), so checkpoints move between the two
//
// A subclass registers in its constructor and keeps the returned handles:
//
//   class Block : public Module {
//    public:
//     Block() {
//       conv = register_module("conv", std::make_shared<Conv2d>(1, 8, 3));
//       scale = register_parameter("scale", Tensor::ones({8}));
//     }
//     Tensor forward(const Tensor& x) override { return conv->forward(x) * scale; }
//     std::shared_ptr<Conv2d> conv;
//     Tensor scale;
//   };
//
// Tensor handles are shared: the handle a subclass keeps, the one in the
// module's list and the ones an optimiser holds all point at the same
// TensorImpl. That is what keeps them valid across to(device): see to().
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"

namespace engine {

class Module;
using NamedModules = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

// What load_state_dict found; in strict mode both lists are empty (it throws otherwise).
struct LoadStateDictResult {
  std::vector<std::string> missing_keys;     // in the module, not in the state dict
  std::vector<std::string> unexpected_keys;  // in the state dict, not in the module
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // A module owns its tensors; a copy would silently alias them. Share a
  // module through std::shared_ptr instead.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The class name used in messages ("Conv2d", "Sequential", ...).
  virtual std::string type_name() const { return "Module"; }

  // --- The computation ----------------------------------------------------------
  // Modules with one input override this; by default it throws. Models with
  // several inputs (x, t, class) define their own forward(...) instead.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // --- Registration (call from the constructor) ------------------------------------
  // Names must be non-empty, contain no '.', and be unique within this module
  // across parameters, buffers and children.
  //
  // A trainable tensor: a defined F32 leaf; it is marked requires_grad.
  // Returns the same handle (it aliases the registered tensor).
  Tensor register_parameter(const std::string& name, Tensor tensor);
  // Saved in the state dict, never trained (any dtype). Returns the same handle.
  Tensor register_buffer(const std::string& name, Tensor tensor);
  // A child module; returns it with its own type, for the caller to keep.
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    register_child(name, module);
    return module;
  }

  // --- Introspection (recursive, dotted names, registration order) -------------------
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  const NamedModules& named_children() const { return children_; }
  // Number of trainable elements (sum of the parameters' numel).
  int64_t parameter_count() const;

  // --- State dict ------------------------------------------------------------------
  // The tensors themselves (aliases, not copies), named as PyTorch names them.
  NamedTensors state_dict() const;
  // Copies the values of `state` into this module's existing tensors, which
  // stay on their device (a CPU checkpoint loads into a CUDA model). Every key
  // is checked first and nothing is written unless all checks pass:
  //   * a key present in both must have the same shape and dtype (an error in
  //     either mode: the message names the key and both shapes);
  //   * strict: a missing or unexpected key is an error, and the message lists
  //     ALL of them (PyTorch's "Missing key(s) ... Unexpected key(s) ...");
  //   * non-strict: they are returned instead, and the matching keys load.
  LoadStateDictResult load_state_dict(const NamedTensors& state, bool strict = true);

  // Writes state_dict() to a safetensors file (atomically; see core/safetensors.h)
  // and loads one back with load_state_dict(.., strict).
  void save(const std::string& path) const;
  LoadStateDictResult load(const std::string& path, bool strict = true);

  // --- Modes and placement ------------------------------------------------------------
  // Training mode (the default) or evaluation mode, for this module and all
  // its descendants. BatchNorm uses batch statistics in training mode and
  // running statistics in evaluation mode.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves every parameter, buffer and accumulated gradient to `device`, in place.
  // How: each tensor's TensorImpl is kept and its storage is replaced by a
  // copy on the new device (offset reset to 0). Every handle to the tensor -
  // the subclass member, this module's list, an optimiser's parameter list -
  // points at that same TensorImpl, so all of them see the move; nothing has
  // to be re-registered and an optimiser built before to() stays valid.
  // Caveats: views created earlier (detach(), reshape()) keep the old storage,
  // and two parameters that shared one storage (tied weights) are moved as
  // two separate copies.
  void to(Device device);

  // Drops every parameter's accumulated gradient (PyTorch's set_to_none=True).
  void zero_grad();

 private:
  void register_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const char* what, const std::string& name) const;
  void collect_parameters(const std::string& prefix, NamedTensors& out) const;
  void collect_buffers(const std::string& prefix, NamedTensors& out) const;
  void collect_state(const std::string& prefix, NamedTensors& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  NamedModules children_;
  bool training_ = true;
};

}  // namespace engine
