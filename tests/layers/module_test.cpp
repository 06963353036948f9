// Module: registration, PyTorch state-dict names and order, load_state_dict
// and its errors, safetensors save/load, train/eval, to(device), zero_grad.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "core/ops.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "layers/layers.h"
#include "layers/module.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::contains;
using testing::error_of;
using testing::keys_of;

// The module of the brief: a nested Sequential(Conv2d, BatchNorm2d, GELU)
// under the name "block", plus a parameter and a buffer of its own that are
// registered AFTER the child, to show that a module's own tensors still come
// first in PyTorch's order. The PyTorch equivalent:
//   class Net(nn.Module):
//     def __init__(self):
//       super().__init__()
//       self.block = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.GELU())
//       self.scale = nn.Parameter(torch.ones(4, 1, 1))
//       self.register_buffer("offset", torch.zeros(1))
class Net : public Module {
 public:
  explicit Net(uint64_t seed = 0) {
    Generator gen(seed);
    block = register_module("block", std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                                         std::make_shared<Conv2d>(1, 4, 3, 1, 1, true, gen),
                                         std::make_shared<BatchNorm2d>(4), std::make_shared<GELU>()}));
    scale = register_parameter("scale", Tensor::ones({4, 1, 1}));
    offset = register_buffer("offset", Tensor::zeros({1}));
  }
  std::string type_name() const override { return "Net"; }
  std::shared_ptr<Sequential> block;
  Tensor scale, offset;
};

TEST(Module, StateDictKeysAndOrderMatchPyTorch) {
  Net net;
  // What torch prints for list(Net().state_dict().keys()).
  const std::vector<std::string> expected{"scale",
                                          "offset",
                                          "block.0.weight",
                                          "block.0.bias",
                                          "block.1.weight",
                                          "block.1.bias",
                                          "block.1.running_mean",
                                          "block.1.running_var",
                                          "block.1.num_batches_tracked"};
  EXPECT_EQ(keys_of(net.state_dict()), expected);
  EXPECT_EQ(keys_of(net.named_parameters()),
            (std::vector<std::string>{"scale", "block.0.weight", "block.0.bias", "block.1.weight", "block.1.bias"}));
  EXPECT_EQ(keys_of(net.named_buffers()),
            (std::vector<std::string>{"offset", "block.1.running_mean", "block.1.running_var",
                                      "block.1.num_batches_tracked"}));
  EXPECT_EQ(net.parameters().size(), 5u);
  EXPECT_EQ(net.parameter_count(), 4 + (4 * 1 * 3 * 3 + 4) + (4 + 4));
}

TEST(Module, NestedSequentialKeysExactlyAsBrief) {
  // Only the Sequential under "block": the seven keys of the brief, in order.
  class Wrapper : public Module {
   public:
    Wrapper() {
      auto seq = std::make_shared<Sequential>();
      seq->push_back(std::make_shared<Conv2d>(1, 2, 3));
      seq->push_back(std::make_shared<BatchNorm2d>(2));
      seq->push_back(std::make_shared<GELU>());
      register_module("block", seq);
    }
  } wrapper;
  EXPECT_EQ(keys_of(wrapper.state_dict()),
            (std::vector<std::string>{"block.0.weight", "block.0.bias", "block.1.weight", "block.1.bias",
                                      "block.1.running_mean", "block.1.running_var",
                                      "block.1.num_batches_tracked"}));
}

TEST(Module, StateDictShapesDtypesAndAliasing) {
  Net net;
  const NamedTensors state = net.state_dict();
  EXPECT_EQ(state[2].second.shape(), (Shape{4, 1, 3, 3}));
  EXPECT_EQ(state[8].second.shape(), Shape{});
  EXPECT_EQ(state[8].second.dtype(), DType::I64);
  EXPECT_EQ(state[6].second.dtype(), DType::F32);
  // The state dict holds the module's tensors themselves, not copies.
  EXPECT_EQ(&state[0].second.impl(), &net.scale.impl());
  EXPECT_EQ(&state[2].second.impl(), &std::static_pointer_cast<Conv2d>((*net.block)[0])->weight.impl());
  // Parameters require grad; buffers do not.
  for (const auto& [key, p] : net.named_parameters()) EXPECT_TRUE(p.requires_grad()) << key;
  for (const auto& [key, b] : net.named_buffers()) EXPECT_FALSE(b.requires_grad()) << key;
}

TEST(Module, RegistrationRejectsBadNames) {
  class Bad : public Module {
   public:
    std::string type_name() const override { return "Bad"; }
    void add_param(const std::string& name) { register_parameter(name, Tensor::zeros({1})); }
    void add_buffer(const std::string& name) { register_buffer(name, Tensor::zeros({1})); }
    void add_child(const std::string& name) { register_module(name, std::make_shared<GELU>()); }
  } bad;
  bad.add_param("w");
  EXPECT_TRUE(contains(error_of([&] { bad.add_buffer("w"); }), "'w' is already registered"));
  EXPECT_TRUE(contains(error_of([&] { bad.add_child("w"); }), "'w' is already registered"));
  EXPECT_TRUE(contains(error_of([&] { bad.add_param("a.b"); }), "must not contain '.'"));
  EXPECT_TRUE(contains(error_of([&] { bad.add_param(""); }), "must not be empty"));
  EXPECT_TRUE(contains(error_of([&] { bad.add_param(""); }), "Bad::register_parameter"));
}

TEST(Module, DefaultForwardThrows) {
  Net net;
  const std::string msg = error_of([&] { net.forward(Tensor::zeros({1, 1, 4, 4})); });
  EXPECT_TRUE(contains(msg, "Net::forward")) << msg;
  EXPECT_TRUE(contains(msg, "not implemented")) << msg;
}

TEST(Module, LoadStateDictRoundTrip) {
  Net source(1), target(2);
  // Give the source non-default buffers: a training-mode forward updates them.
  source.block->forward(testing::random_tensor({2, 1, 5, 5}, 7));
  source.scale.fill_(0.5f);
  ASSERT_GT(testing::max_abs_diff(source.state_dict()[2].second, target.state_dict()[2].second), 0.0);

  const TensorImpl* weight_impl = &target.state_dict()[2].second.impl();
  const LoadStateDictResult result = target.load_state_dict(source.state_dict());
  EXPECT_TRUE(result.missing_keys.empty());
  EXPECT_TRUE(result.unexpected_keys.empty());
  const NamedTensors a = source.state_dict(), b = target.state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].second.dtype() == DType::I64) {
      EXPECT_EQ(a[i].second.to_vector_i64(), b[i].second.to_vector_i64()) << a[i].first;
    } else {
      EXPECT_EQ(a[i].second.to_vector(), b[i].second.to_vector()) << a[i].first;
    }
    // Values were copied into the target's own tensors, not aliased.
    EXPECT_FALSE(a[i].second.same_storage(b[i].second)) << a[i].first;
  }
  EXPECT_EQ(b[8].second.to_vector_i64(), std::vector<int64_t>{1});
  EXPECT_EQ(&b[2].second.impl(), weight_impl);  // the same tensor, new values
}

TEST(Module, StrictLoadListsAllMissingAndUnexpectedKeysAndLoadsNothing) {
  Net source(1), target(2);
  NamedTensors state = source.state_dict();
  // Drop two keys, add two that the module does not have.
  state.erase(state.begin() + 7);  // block.1.running_var
  state.erase(state.begin() + 2);  // block.0.weight
  state.emplace_back("block.2.weight", Tensor::zeros({3}));
  state.emplace_back("extra", Tensor::zeros({1}));
  const std::vector<float> before = target.scale.to_vector();
  source.scale.fill_(3.0f);

  const std::string msg = error_of([&] { target.load_state_dict(state); });
  EXPECT_TRUE(contains(msg, "Net")) << msg;
  EXPECT_TRUE(contains(msg, "missing key(s): \"block.0.weight\", \"block.1.running_var\"")) << msg;
  EXPECT_TRUE(contains(msg, "unexpected key(s): \"block.2.weight\", \"extra\"")) << msg;
  // Nothing was written: "scale" was present and valid but is unchanged.
  EXPECT_EQ(target.scale.to_vector(), before);
}

TEST(Module, LoadRejectsWrongShapeNamingKeyAndShapes) {
  Net target;
  NamedTensors state = target.state_dict();
  state[2].second = Tensor::zeros({4, 2, 3, 3});  // block.0.weight
  for (bool strict : {true, false}) {  // a size mismatch is an error in either mode, as in PyTorch
    const std::string msg = error_of([&] { target.load_state_dict(state, strict); });
    EXPECT_TRUE(contains(msg, "size mismatch for block.0.weight")) << msg;
    EXPECT_TRUE(contains(msg, "[4, 2, 3, 3]")) << msg;
    EXPECT_TRUE(contains(msg, "[4, 1, 3, 3]")) << msg;
  }
}

TEST(Module, LoadRejectsWrongDtypeAndDuplicateKeys) {
  Net target;
  NamedTensors state = target.state_dict();
  state[8].second = Tensor::zeros({});  // num_batches_tracked as F32
  std::string msg = error_of([&] { target.load_state_dict(state); });
  EXPECT_TRUE(contains(msg, "dtype mismatch for block.1.num_batches_tracked")) << msg;
  EXPECT_TRUE(contains(msg, "F32")) << msg;
  EXPECT_TRUE(contains(msg, "I64")) << msg;

  NamedTensors duplicated = target.state_dict();
  duplicated.push_back(duplicated[0]);
  msg = error_of([&] { target.load_state_dict(duplicated); });
  EXPECT_TRUE(contains(msg, "duplicate key \"scale\"")) << msg;
}

TEST(Module, NonStrictLoadReportsKeysAndLoadsTheRest) {
  Net source(1), target(2);
  source.scale.fill_(0.25f);
  NamedTensors state = source.state_dict();
  state.erase(state.begin() + 3);  // block.0.bias
  state.emplace_back("unused", Tensor::zeros({2}));
  const std::vector<float> bias_before = target.state_dict()[3].second.to_vector();

  const LoadStateDictResult result = target.load_state_dict(state, /*strict=*/false);
  EXPECT_EQ(result.missing_keys, std::vector<std::string>{"block.0.bias"});
  EXPECT_EQ(result.unexpected_keys, std::vector<std::string>{"unused"});
  EXPECT_EQ(target.scale.to_vector(), std::vector<float>(4, 0.25f));
  EXPECT_EQ(target.state_dict()[2].second.to_vector(), source.state_dict()[2].second.to_vector());
  EXPECT_EQ(target.state_dict()[3].second.to_vector(), bias_before);  // missing: untouched
}

TEST(Module, SaveAndLoadThroughSafetensors) {
  Net source(3), target(4);
  source.block->forward(testing::random_tensor({2, 1, 5, 5}, 8));  // running stats, counter 1
  source.block->forward(testing::random_tensor({2, 1, 5, 5}, 9));  // counter 2
  const std::string path =
      (std::filesystem::temp_directory_path() / ("module_test_" + std::to_string(getpid()) + ".safetensors")).string();
  source.save(path);

  // The file holds exactly the state dict, under the same names.
  const SafetensorsContents contents = load_safetensors(path);
  std::vector<std::string> file_keys = keys_of(contents.tensors);
  std::vector<std::string> module_keys = keys_of(source.state_dict());
  std::sort(file_keys.begin(), file_keys.end());
  std::sort(module_keys.begin(), module_keys.end());
  EXPECT_EQ(file_keys, module_keys);

  target.load(path);
  std::remove(path.c_str());
  const NamedTensors a = source.state_dict(), b = target.state_dict();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].second.dtype() == DType::I64)
      EXPECT_EQ(a[i].second.to_vector_i64(), b[i].second.to_vector_i64()) << a[i].first;
    else
      EXPECT_EQ(a[i].second.to_vector(), b[i].second.to_vector()) << a[i].first;
  }
  EXPECT_EQ(b[8].second.to_vector_i64(), std::vector<int64_t>{2});
  // Same model, same input, same output.
  source.eval();
  target.eval();
  const Tensor x = testing::random_tensor({1, 1, 5, 5}, 10);
  EXPECT_EQ(source.block->forward(x).to_vector(), target.block->forward(x).to_vector());
}

TEST(Module, LoadFromMissingFileNamesTheFile) {
  Net net;
  const std::string msg = error_of([&] { net.load("/nonexistent/dir/model.safetensors"); });
  EXPECT_TRUE(contains(msg, "/nonexistent/dir/model.safetensors")) << msg;
}

TEST(Module, TrainAndEvalAreRecursive) {
  Net net;
  EXPECT_TRUE(net.is_training());
  net.eval();
  EXPECT_FALSE(net.is_training());
  EXPECT_FALSE(net.block->is_training());
  for (std::size_t i = 0; i < net.block->size(); ++i) EXPECT_FALSE((*net.block)[i]->is_training());
  net.train();
  for (std::size_t i = 0; i < net.block->size(); ++i) EXPECT_TRUE((*net.block)[i]->is_training());
}

TEST(Module, ZeroGradDropsEveryGradient) {
  Net net;
  const Tensor y = net.block->forward(testing::random_tensor({2, 1, 4, 4}, 11));
  (sum(y) + sum(net.scale)).backward();
  for (const auto& [key, p] : net.named_parameters()) EXPECT_TRUE(p.grad().defined()) << key;
  net.zero_grad();
  for (const auto& [key, p] : net.named_parameters()) EXPECT_FALSE(p.grad().defined()) << key;
}

TEST(Module, ToSameDeviceKeepsEverything) {
  Net net;
  const NamedTensors before = net.state_dict();
  net.to(Device::cpu());
  const NamedTensors after = net.state_dict();
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(before[i].second.same_storage(after[i].second));
}

TEST(Module, ToMovesTensorsInPlaceKeepingHandles) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device: the in-place move needs a second device";
  Net net(5);
  const Tensor weight_handle = net.state_dict()[2].second;  // e.g. an optimiser's reference
  const std::vector<float> values = weight_handle.to_vector();
  net.to(Device::cuda());
  for (const auto& [key, t] : net.state_dict()) EXPECT_TRUE(t.device().is_cuda()) << key;
  EXPECT_TRUE(weight_handle.device().is_cuda());  // the old handle followed the move
  EXPECT_EQ(weight_handle.to_vector(), values);
  EXPECT_TRUE(weight_handle.requires_grad());
  net.to(Device::cpu());
  EXPECT_TRUE(weight_handle.device().is_cpu());
  EXPECT_EQ(weight_handle.to_vector(), values);
}

}  // namespace
}  // namespace engine
