// The three UNets against PyTorch at D = 8, batch 4
// (tests/data/golden/unet_<mode>.safetensors, tools/parity/make_golden.py):
//   * the state dict: the engine's keys, dtypes and shapes, in order, are
//     PyTorch's (tests/data/golden/unet_state_dict_keys.txt);
//   * one training step from PyTorch's initial weights (loaded strictly):
//     forward output, loss, the gradient of every parameter, the BatchNorm
//     buffers after the step, every parameter after one Adam step (lr 1e-3);
//   * a 5-step training trajectory from the same weights on stored batches
//     and noise: the five losses.
//
// The losses are those of the assignment: Part 1 (mode none) denoises
// z = x0 + 0.5 eps back to x0, loss = mse(unet(z), x0); Part 2 predicts the
// noise, loss = mse(unet(x_t, t/T [, c]), eps), with x_t and t/T stored by
// PyTorch (the schedule itself is checked in ddpm_parity_test.cpp).
//
// Tolerances (tests/parity/golden.h): 16 x PyTorch's own float32 error of the
// same tensor, floored at 1e-6 x the tensor's largest element. A UNet stacks
// ~20 convolutions and 17 BatchNorms; their round-off adds up along the way
// and BatchNorm's division by the batch's standard deviation amplifies it, so
// the errors are far above one ulp, and PyTorch's float32 error measures
// exactly that amplification for each tensor. Twice the per-op factor,
// because over ~150 tensors one sample of an accumulated error lands farther
// from its typical size than for a single op. Two cases need more, stated
// where they occur: parameters whose exact gradient is zero, and Adam.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "core/ops.h"
#include "layers/optim.h"
#include "models/unet.h"
#include "tests/parity/golden.h"

namespace engine {
namespace {

using parity::GoldenFile;
using parity::Tolerance;

constexpr int64_t kHidden = 8;
constexpr double kLearningRate = 1e-3;  // make_golden.py's LR
constexpr float kDenoiserSigma = 0.5f;  // reference.DENOISER_SIGMA
const Tolerance kUNetTolerance{16.0, 1e-6, 0.0};

struct Mode {
  UNetConditioning conditioning;
  const char* name;  // as in the file names and reference.CONDITIONINGS
};
const Mode kModes[] = {{UNetConditioning::none, "none"},
                       {UNetConditioning::time, "time"},
                       {UNetConditioning::time_and_class, "time_and_class"}};

// "key DTYPE [shape]" per state-dict entry, the format of unet_state_dict_keys.txt.
std::vector<std::string> describe_state_dict(const Module& module) {
  std::vector<std::string> lines;
  for (const auto& [key, tensor] : module.state_dict()) {
    std::ostringstream line;
    line << key << ' ' << (tensor.dtype() == DType::I64 ? "I64" : "F32") << " [";
    for (int64_t d = 0; d < tensor.dim(); ++d) line << (d ? ", " : "") << tensor.size(d);
    line << ']';
    lines.push_back(line.str());
  }
  return lines;
}

// The lines of the golden key list under "# mode <name>, ...".
std::vector<std::string> golden_keys(const std::string& mode) {
  std::ifstream in(parity::golden_path("unet_state_dict_keys.txt"));
  EXPECT_TRUE(in.good()) << "cannot open unet_state_dict_keys.txt";
  std::vector<std::string> lines;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("# mode ", 0) == 0) {
      inside = line.rfind("# mode " + mode + ",", 0) == 0;
      continue;
    }
    if (inside && !line.empty() && line[0] != '#') lines.push_back(line);
  }
  return lines;
}

TEST(UNetParity, StateDictKeysDtypesShapesAndOrderArePyTorchs) {
  for (const Mode& mode : kModes) {
    SCOPED_TRACE(mode.name);
    Generator gen(0);
    UNet net(kHidden, mode.conditioning, gen);
    const std::vector<std::string> engine_keys = describe_state_dict(net);
    const std::vector<std::string> torch_keys = golden_keys(mode.name);
    ASSERT_FALSE(torch_keys.empty());
    if (engine_keys != torch_keys) {
      // Leave the engine's list beside the golden one for a diff.
      const std::string path = ::testing::TempDir() + "engine_unet_state_dict_keys_" + mode.name + ".txt";
      std::ofstream out(path);
      for (const auto& line : engine_keys) out << line << '\n';
      ADD_FAILURE() << "the engine's state dict differs from PyTorch's; the engine's list is in " << path
                    << "; diff it against tests/data/golden/unet_state_dict_keys.txt";
    }
    EXPECT_EQ(engine_keys.size(), torch_keys.size());
  }
}

// The model inputs of batch `prefix` ("batch.", "traj.3.") and the loss.
struct StepInputs {
  Tensor x, t, c, target;
};

StepInputs step_inputs(const GoldenFile& g, const std::string& prefix, UNetConditioning conditioning) {
  StepInputs in;
  const Tensor x0 = g.copy(prefix + "x0"), eps = g.copy(prefix + "eps");
  if (conditioning == UNetConditioning::none) {
    in.x = add(x0, scale(eps, kDenoiserSigma));  // z = x0 + sigma eps
    in.target = x0;
  } else {
    in.x = g.copy(prefix + "x_t");
    in.t = g.copy(prefix + "t_input");
    in.target = eps;
  }
  if (conditioning == UNetConditioning::time_and_class) in.c = g.copy(prefix + "c");
  return in;
}

std::unique_ptr<UNet> load_initial_model(const GoldenFile& g, UNetConditioning conditioning) {
  Generator gen(12345);  // any: every value is overwritten by the strict load
  auto net = std::make_unique<UNet>(kHidden, conditioning, gen);
  net->load_state_dict(g.with_prefix("init."), /*strict=*/true);
  net->train();
  return net;
}

TEST(UNetParity, OneTrainingStepMatchesPyTorch) {
  for (const Mode& mode : kModes) {
    SCOPED_TRACE(mode.name);
    const GoldenFile g(std::string("unet_") + mode.name + ".safetensors");
    auto net = load_initial_model(g, mode.conditioning);
    Adam optimizer(net->parameters(), kLearningRate);

    const StepInputs in = step_inputs(g, "batch.", mode.conditioning);
    Tensor prediction = net->forward(in.x, in.t, in.c);
    parity::expect_matches_golden(g, "out", prediction, kUNetTolerance);
    Tensor loss = mse_loss(prediction, in.target);
    parity::expect_matches_golden(g, "loss", loss, kUNetTolerance);
    optimizer.zero_grad();
    loss.backward();

    // Every parameter gradient. The biases of the convolutions right before a
    // BatchNorm have gradient exactly 0 in exact arithmetic (the BatchNorm
    // subtracts the batch mean, so a constant shift changes nothing): the
    // golden value is ~1e-17 and both float32 results are pure round-off of a
    // sum of K = N*H*W terms that cancel, ~1e-8 here. Their f32err is that
    // round-off, so the same 16x rule covers them.
    for (const auto& [name, p] : net->named_parameters())
      parity::expect_matches_golden(g, "grad." + name, p.grad(), kUNetTolerance);

    // The buffers after the step: running stats (one training-mode update,
    // 0.9 * old + 0.1 * batch statistic) and num_batches_tracked (exactly 1).
    for (const auto& [name, buffer] : net->named_buffers()) {
      if (buffer.dtype() == DType::I64) {
        parity::expect_equal_i64(g, "after." + name, buffer);
      } else {
        parity::expect_matches_golden(g, "after." + name, buffer, kUNetTolerance);
      }
    }

    // One Adam step. Its first update is lr * g / (|g| + 1e-8) per element:
    // about lr * sign(g), so for a parameter whose gradient is round-off (the
    // pre-BatchNorm biases above) the update is anything in (-lr, lr) on
    // either side, and PyTorch's float32 update is itself such a value. There
    // the tolerance is lr, the largest possible difference from the exact
    // (zero) update; elsewhere the 16x rule.
    std::map<std::string, double> gradient_is_roundoff;
    for (const auto& [name, p] : net->named_parameters()) {
      const double grad_tol = parity::tolerance_of(g, "grad." + name, kUNetTolerance);
      double max_grad = 0.0;
      for (float v : g.get("grad." + name).to_vector()) max_grad = std::max(max_grad, std::fabs(double(v)));
      gradient_is_roundoff[name] = max_grad <= grad_tol;
    }
    optimizer.step();
    int roundoff_parameters = 0;
    for (const auto& [name, p] : net->named_parameters()) {
      Tolerance tol = kUNetTolerance;
      if (gradient_is_roundoff[name]) {
        tol.abs_floor = 1.01 * kLearningRate;
        ++roundoff_parameters;
      }
      parity::expect_matches_golden(g, "adam1." + name, p, tol);
    }
    // The pre-BatchNorm conv biases: Conv and DownConv and UpConv and Unflatten
    // blocks (17) all end in a BatchNorm; `out` does not.
    EXPECT_EQ(roundoff_parameters, 17);
    parity::report_worst_ratio(std::string("UNet ") + mode.name + ", one step");
  }
}

TEST(UNetParity, FiveStepTrainingTrajectoryMatchesPyTorch) {
  // The same model and data as PyTorch: five steps of forward, mse loss,
  // backward and Adam (lr 1e-3), one stored batch each, losses compared.
  // The pre-BatchNorm biases take different round-off-driven Adam steps (see
  // above), but the BatchNorm removes them from the output, so the losses
  // keep matching within the 16x rule.
  for (const Mode& mode : kModes) {
    SCOPED_TRACE(mode.name);
    const GoldenFile g(std::string("unet_") + mode.name + ".safetensors");
    auto net = load_initial_model(g, mode.conditioning);
    Adam optimizer(net->parameters(), kLearningRate);
    const std::vector<float> expected = g.get("traj.losses").to_vector();
    std::vector<float> losses;
    for (size_t step = 0; step < expected.size(); ++step) {
      const StepInputs in = step_inputs(g, "traj." + std::to_string(step) + ".", mode.conditioning);
      Tensor loss = mse_loss(net->forward(in.x, in.t, in.c), in.target);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      losses.push_back(loss.item());
    }
    ASSERT_EQ(losses.size(), 5u);
    parity::expect_matches_golden(g, "traj.losses", Tensor::from_vector(losses, {5}), kUNetTolerance);
    // And the model did learn something the same way: losses differ step to step.
    EXPECT_NE(losses.front(), losses.back());
    parity::report_worst_ratio(std::string("UNet ") + mode.name + ", 5-step losses");
  }
}

TEST(UNetParity, PyTorchCheckpointLoadsStrictlyAndGivesPyTorchsOutputs) {
  // A state dict saved by PyTorch (after the 5 steps: running stats moved,
  // num_batches_tracked = 5), read through Module::load (safetensors, strict),
  // evaluated in eval mode on a stored batch.
  for (const Mode& mode : kModes) {
    SCOPED_TRACE(mode.name);
    Generator gen(777);
    UNet net(kHidden, mode.conditioning, gen);
    const auto result =
        net.load(parity::golden_path(std::string("torch_checkpoint_") + mode.name + ".safetensors"), true);
    EXPECT_TRUE(result.missing_keys.empty());
    EXPECT_TRUE(result.unexpected_keys.empty());
    for (const auto& [name, buffer] : net.named_buffers())
      if (buffer.dtype() == DType::I64) {
        EXPECT_EQ(buffer.to_vector_i64(), std::vector<int64_t>{5}) << name;
      }
    net.eval();
    const GoldenFile io(std::string("torch_checkpoint_") + mode.name + "_io.safetensors");
    const Tensor t = mode.conditioning != UNetConditioning::none ? io.copy("input.t") : Tensor();
    const Tensor c = mode.conditioning == UNetConditioning::time_and_class ? io.copy("input.c") : Tensor();
    parity::expect_matches_golden(io, "eval_out", net.forward(io.copy("input.x"), t, c), kUNetTolerance);
    parity::report_worst_ratio(std::string("UNet ") + mode.name + ", PyTorch checkpoint, eval");
  }
}

TEST(UNetParity, CheckpointWithAMissingKeyIsRejectedStrictly) {
  // The strict load above must be able to fail: drop one key.
  const GoldenFile g("unet_time.safetensors");
  NamedTensors state = g.with_prefix("init.");
  state.erase(std::remove_if(state.begin(), state.end(),
                             [](const auto& kv) { return kv.first == "fc1_t.0.weight"; }),
              state.end());
  Generator gen(0);
  UNet net(kHidden, UNetConditioning::time, gen);
  try {
    net.load_state_dict(state, true);
    ADD_FAILURE() << "a state dict without fc1_t.0.weight loaded strictly";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc1_t.0.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace engine
