// The UNets: the module tree's state-dict keys (what PyTorch expects), shapes,
// conditioning, and that a backward reaches every parameter.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/ops.h"
#include "models/unet.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

std::set<std::string> keys_of(const Module& m) {
  std::set<std::string> keys;
  for (const auto& [name, tensor] : m.state_dict()) keys.insert(name);
  return keys;
}

TEST(UNet, StateDictKeysFollowThePyTorchTree) {
  Generator gen(0);
  UNet net(4, UNetConditioning::none, gen);
  const auto keys = keys_of(net);
  for (const char* key : {"inc.0.0.weight", "inc.0.0.bias", "inc.0.1.weight", "inc.0.1.running_mean",
                          "inc.1.0.weight", "down1.0.0.weight", "down1.1.0.1.running_var", "down2.1.1.0.bias",
                          "unflat.0.weight", "unflat.1.num_batches_tracked", "up1.0.0.weight", "up2.1.1.1.bias",
                          "outc.0.0.weight", "out.weight", "out.bias"})
    EXPECT_TRUE(keys.count(key)) << "missing key " << key;
  EXPECT_FALSE(keys.count("fc1_t.0.weight"));
  // 9 convs/transposed convs with weight+bias... counted per kind:
  //   Conv2d: inc 2, down1 3, down2 3, up1 2, up2 2, outc 2, out 1 = 15 -> 30 tensors
  //   ConvTranspose2d: unflat, up1, up2 = 3 -> 6 tensors
  //   BatchNorm2d: one per Conv/DownConv/UpConv/Unflatten = 17 -> 85 tensors (5 each)
  EXPECT_EQ(keys.size(), 30u + 6u + 85u);
  // Shapes of a few, D = 4.
  for (const auto& [name, t] : net.state_dict()) {
    if (name == "unflat.0.weight") { EXPECT_EQ(t.shape(), (Shape{8, 8, 7, 7})); }
    if (name == "up1.0.0.weight") { EXPECT_EQ(t.shape(), (Shape{16, 4, 4, 4})); }
    if (name == "outc.0.0.weight") { EXPECT_EQ(t.shape(), (Shape{4, 8, 3, 3})); }
    if (name == "unflat.1.num_batches_tracked") { EXPECT_EQ(t.dtype(), DType::I64); }
  }
}

TEST(UNet, ConditionedVariantsAddFcBlocks) {
  Generator gen(0);
  UNet time_net(4, UNetConditioning::time, gen);
  UNet class_net(4, UNetConditioning::time_and_class, gen);
  const auto tk = keys_of(time_net), ck = keys_of(class_net);
  for (const char* key : {"fc1_t.0.weight", "fc1_t.0.bias", "fc1_t.2.weight", "fc2_t.2.bias"}) {
    EXPECT_TRUE(tk.count(key)) << key;
    EXPECT_TRUE(ck.count(key)) << key;
  }
  EXPECT_FALSE(tk.count("fc1_c.0.weight"));
  EXPECT_TRUE(ck.count("fc1_c.0.weight"));
  EXPECT_TRUE(ck.count("fc2_c.2.bias"));
  for (const auto& [name, t] : class_net.state_dict()) {
    if (name == "fc1_c.0.weight") { EXPECT_EQ(t.shape(), (Shape{8, 10})); }
    if (name == "fc2_t.0.weight") { EXPECT_EQ(t.shape(), (Shape{4, 1})); }
  }
}

TEST(UNet, ForwardShapesAndBackwardReachesEveryParameter) {
  for (auto mode : {UNetConditioning::none, UNetConditioning::time, UNetConditioning::time_and_class}) {
    Generator gen(1);
    UNet net(4, mode, gen);
    const int64_t N = 3;
    Tensor x = testing::random_tensor({N, 1, 28, 28}, 2, 0.0f, 1.0f);
    Tensor t = mode != UNetConditioning::none ? testing::random_tensor({N, 1}, 3, 0.0f, 1.0f) : Tensor();
    Tensor c;
    if (mode == UNetConditioning::time_and_class) {
      std::vector<float> onehot(N * 10, 0.0f);
      onehot[0 * 10 + 3] = onehot[1 * 10 + 7] = 1.0f;  // third row: unconditional (zeros)
      c = Tensor::from_vector(onehot, {N, 10});
    }
    Tensor y = net.forward(x, t, c);
    ASSERT_EQ(y.shape(), (Shape{N, 1, 28, 28}));
    mse_loss(y, x).backward();
    for (const auto& [name, p] : net.named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << name << " got no gradient";
      const auto g = p.grad().to_vector();
      EXPECT_TRUE(std::any_of(g.begin(), g.end(), [](float v) { return v != 0.0f; })) << name << " gradient is all 0";
    }
  }
}

TEST(UNet, TimeConditioningChangesTheOutput) {
  Generator gen(4);
  UNet net(4, UNetConditioning::time, gen);
  net.eval();
  Tensor x = testing::random_tensor({2, 1, 28, 28}, 5);
  Tensor a = net.forward(x, Tensor::full({2, 1}, 0.1f), Tensor());
  Tensor b = net.forward(x, Tensor::full({2, 1}, 0.9f), Tensor());
  EXPECT_GT(testing::max_abs_diff(a, b), 1e-4);
}

TEST(UNet, RejectsBadInputs) {
  Generator gen(0);
  UNet plain(4, UNetConditioning::none, gen);
  UNet timed(4, UNetConditioning::time, gen);
  UNet classed(4, UNetConditioning::time_and_class, gen);
  Tensor x = Tensor::zeros({2, 1, 28, 28});
  EXPECT_THROW(plain.forward(Tensor::zeros({2, 1, 32, 32})), Error);
  EXPECT_THROW(plain.forward(x, Tensor::zeros({2, 1}), Tensor()), Error);
  EXPECT_THROW(timed.forward(x), Error);
  try {
    timed.forward(x, Tensor::zeros({3, 1}), Tensor());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[3, 1]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(classed.forward(x, Tensor::zeros({2, 1}), Tensor::zeros({2, 9})), Error);
  EXPECT_THROW(UNet(0, UNetConditioning::none, gen), Error);
}

}  // namespace
}  // namespace engine
