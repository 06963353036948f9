#include "layers/layers.h"

namespace engine {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& module : modules) push_back(std::move(module));
}

const std::shared_ptr<Module>& Sequential::operator[](std::size_t index) const {
  ENGINE_CHECK(index < size(), "Sequential: index ", index, " out of range for ", size(), " modules");
  return named_children()[index].second;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& [name, child] : named_children()) h = child->forward(h);
  return h;
}

}  // namespace engine
