// End to end: layers + autograd + Adam must actually learn. A small conv net
// is fitted to the outputs of a "teacher" net of the same architecture with
// other weights, so that a perfect fit exists; the loss must fall at least
// tenfold within a bounded number of steps.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"
#include "layers/layers.h"
#include "layers/optim.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

// Conv2d(1,8,3,1,1) - BatchNorm2d(8) - GELU - Conv2d(8,1,3,1,1): 169 trainable numbers.
std::shared_ptr<Sequential> make_net(uint64_t seed) {
  Generator gen(seed);
  auto net = std::make_shared<Sequential>();
  net->push_back(std::make_shared<Conv2d>(1, 8, 3, 1, 1, true, gen));
  net->push_back(std::make_shared<BatchNorm2d>(8));
  net->push_back(std::make_shared<GELU>());
  net->push_back(std::make_shared<Conv2d>(8, 1, 3, 1, 1, true, gen));
  return net;
}

TEST(Learning, SmallConvNetFitsFixedTargetsWithAdam) {
  const Tensor inputs = testing::random_tensor({8, 1, 8, 8}, 2024);  // a fixed batch of 8 images

  // The targets: a teacher with other weights (scaled up so the targets have
  // some size), applied in training mode like the student will be.
  auto teacher = make_net(99);
  Tensor targets;
  {
    autograd::NoGradGuard no_grad;
    for (auto& [name, p] : teacher->named_parameters()) p.copy_(p * 3.0f);
    targets = teacher->forward(inputs).detach();
  }

  auto student = make_net(1);
  Adam optimizer(student->parameters(), 2e-2);
  float first_loss = 0.0f, loss_value = 0.0f;
  const int max_steps = 200;
  int steps = 0;
  for (; steps < max_steps; ++steps) {
    optimizer.zero_grad();
    const Tensor loss = mse_loss(student->forward(inputs), targets);
    loss.backward();
    optimizer.step();
    loss_value = loss.item();
    if (steps == 0) first_loss = loss_value;
    ASSERT_TRUE(std::isfinite(loss_value)) << "step " << steps;
    if (loss_value < first_loss / 10.0f) break;
  }
  EXPECT_LT(loss_value, first_loss / 10.0f)
      << "after " << steps << " steps the loss fell from " << first_loss << " to " << loss_value;
  // The running statistics were tracked along the way.
  auto bn = std::static_pointer_cast<BatchNorm2d>((*student)[1]);
  EXPECT_EQ(bn->num_batches_tracked.to_vector_i64()[0], steps + (steps < max_steps ? 1 : 0));
}

}  // namespace
}  // namespace engine
