// Reverse-mode automatic differentiation on a dynamic tape.
//
// Every op that produces a tensor from inputs that require grad records a
// Node on the output: the op's name, the input tensors, and a closure that
// maps the gradient of the output to the gradients of the inputs (the
// vector-Jacobian product). The nodes form a DAG rooted at the loss.
// backward() orders that DAG topologically from the root, walks it once in
// that order, sums the gradients that reach each node (a tensor used twice
// gets both contributions), and adds the gradient that reaches each leaf to
// the leaf's .grad. Afterwards the closures and their saved tensors are
// released: the graph is freed, and a second backward through it is an error.
// See docs/autograd.md.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace engine::autograd {

// Maps the gradient of a node's output to one gradient per input (same order
// as Node::inputs). An undefined Tensor means "no gradient for this input".
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;
  std::vector<Tensor> inputs;  // the inputs as the op saw them (their grad_fn links the DAG)
  BackwardFn backward;          // null once the graph has been freed
  int64_t sequence = 0;         // creation order, for a deterministic topological order
};

// True when gradients are being recorded (no NoGradGuard is active on this thread).
bool grad_mode_enabled();

// RAII: while alive, ops record nothing (inference, optimiser updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any input requires grad: the op must record.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Makes `output` a non-leaf that requires grad, produced by `op` from `inputs`.
// Call only when needs_grad(...) is true. Save in the closure what it needs
// (use detach() for the output itself, or the node would own itself).
void record(const char* op, Tensor& output, std::vector<Tensor> inputs, BackwardFn backward);

// Backpropagates `grad_output` (same shape as `root`) from `root`.
void backward(const Tensor& root, const Tensor& grad_output);

}  // namespace engine::autograd
