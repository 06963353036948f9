#include "core/autograd.h"

#include <atomic>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/ops.h"

namespace engine::autograd {
namespace {

thread_local bool t_grad_mode = true;
std::atomic<int64_t> g_next_sequence{0};

// Sum of two gradients into a fresh tensor (never in place: a gradient may
// alias another, e.g. add's backward hands the same tensor to both inputs).
Tensor sum_gradients(const Tensor& a, const Tensor& b) {
  NoGradGuard no_grad;
  return add(a, b);
}

}  // namespace

bool grad_mode_enabled() { return t_grad_mode; }

NoGradGuard::NoGradGuard() : previous_(t_grad_mode) { t_grad_mode = false; }
NoGradGuard::~NoGradGuard() { t_grad_mode = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_mode) return false;
  for (const Tensor* t : inputs)
    if (t != nullptr && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_mode) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* op, Tensor& output, std::vector<Tensor> inputs, BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  node->sequence = g_next_sequence.fetch_add(1);
  output.impl().requires_grad = true;
  output.impl().grad_fn = std::move(node);
}

namespace {

void accumulate_leaf(const Tensor& leaf, const Tensor& grad) {
  NoGradGuard no_grad;
  Tensor existing = leaf.grad();
  if (!existing.defined()) {
    Tensor fresh = grad.clone();  // own storage: the incoming gradient may alias others
    const_cast<Tensor&>(leaf).set_grad(fresh);
  } else {
    accumulate_(existing, grad);
  }
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_output) {
  ENGINE_CHECK(root.requires_grad(), "backward: the tensor does not require grad and has no grad_fn; "
               "did you compute it under NoGradGuard, or from inputs none of which require grad?");
  ENGINE_CHECK(grad_output.shape() == root.shape(), "backward: gradient of shape ",
               shape_str(grad_output.shape()), " does not match tensor of shape ", shape_str(root.shape()));
  if (root.is_leaf()) {
    accumulate_leaf(root, grad_output);
    return;
  }

  // 1. Count, for every node reachable from the root, how many edges into it
  //    come from other reachable nodes: a node may run only once all of them
  //    have delivered their gradient.
  std::unordered_map<Node*, int> pending_consumers;
  std::vector<Node*> stack{root.grad_fn().get()};
  std::unordered_set<Node*> seen{root.grad_fn().get()};
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    ENGINE_CHECK(node->backward != nullptr, "backward: the graph through op '", node->op,
                 "' has already been freed by an earlier backward(); recompute the forward pass");
    for (const Tensor& input : node->inputs) {
      if (!input.defined() || !input.requires_grad() || input.is_leaf()) continue;
      Node* producer = input.grad_fn().get();
      pending_consumers[producer] += 1;
      if (seen.insert(producer).second) stack.push_back(producer);
    }
  }

  // 2. Walk the DAG: among the nodes whose gradient is complete, always take
  //    the one created last (a fixed order: same graph, same bits).
  auto created_later = [](const Node* a, const Node* b) { return a->sequence < b->sequence; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(created_later)> ready(created_later);
  std::unordered_map<Node*, Tensor> gradient_of;
  std::vector<std::shared_ptr<Node>> keep_alive{root.grad_fn()};
  gradient_of[root.grad_fn().get()] = grad_output;
  ready.push(root.grad_fn().get());

  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    Tensor grad = std::move(gradient_of[node]);
    gradient_of.erase(node);

    std::vector<Tensor> input_grads(node->inputs.size());
    if (grad.defined()) {  // undefined: no gradient reached this node
      NoGradGuard no_grad;  // backward closures compute plain tensors
      input_grads = node->backward(grad);
    }
    ENGINE_ASSERT(input_grads.size() == node->inputs.size());

    for (std::size_t i = 0; i < node->inputs.size(); ++i) {
      const Tensor& input = node->inputs[i];
      if (!input.defined() || !input.requires_grad()) continue;
      const Tensor& input_grad = input_grads[i];
      if (input.is_leaf()) {
        if (input_grad.defined()) accumulate_leaf(input, input_grad);
        continue;
      }
      Node* producer = input.grad_fn().get();
      if (input_grad.defined()) {
        ENGINE_CHECK(input_grad.shape() == input.shape(), "backward of '", node->op, "': gradient of input ", i,
                     " has shape ", shape_str(input_grad.shape()), ", expected ", shape_str(input.shape()));
        auto it = gradient_of.find(producer);
        if (it == gradient_of.end() || !it->second.defined())
          gradient_of[producer] = input_grad;
        else
          it->second = sum_gradients(it->second, input_grad);
      }
      if (--pending_consumers[producer] == 0) {
        keep_alive.push_back(input.grad_fn());
        ready.push(producer);
      }
    }
    // Free the graph as we go: the closure and its saved tensors, and the
    // links upstream. A second backward through this node is an error.
    node->backward = nullptr;
    node->inputs.clear();
  }
}

}  // namespace engine::autograd
