// Engine -> PyTorch checkpoints. (PyTorch -> engine is in unet_parity_test.cpp.)
//
// For each UNet (D = 8): train two steps so the BatchNorm buffers move
// (running stats, num_batches_tracked = 2), save the checkpoint with
// Module::save, and beside it an input batch with the engine's eval-mode
// output. Then:
//   1. the engine loads its own checkpoint back (strict) into a fresh model
//      and reproduces its output bit for bit (always runs);
//   2. tools/parity/check_engine_checkpoint.py loads the checkpoint into the
//      PyTorch reference with load_state_dict(strict=True) and compares the
//      reference's output with the engine's (runs when /usr/bin/python3 can
//      import torch; otherwise the test is skipped with a message, so CI
//      without PyTorch passes).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "layers/optim.h"
#include "models/unet.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

constexpr int64_t kHidden = 8;
constexpr int64_t kBatch = 4;

struct Mode {
  UNetConditioning conditioning;
  const char* name;
};
const Mode kModes[] = {{UNetConditioning::none, "none"},
                       {UNetConditioning::time, "time"},
                       {UNetConditioning::time_and_class, "time_and_class"}};

std::string repo_root() { return std::string(ENGINE_TEST_DATA_DIR) + "/../.."; }

std::string output_dir() {
  const std::string dir = ::testing::TempDir() + "engine_parity_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  return dir;
}

// One-hot rows for classes 0..N-1 with the last row dropped (unconditional).
Tensor class_rows(int64_t n) {
  std::vector<float> rows(n * 10, 0.0f);
  for (int64_t i = 0; i + 1 < n; ++i) rows[i * 10 + (i * 3) % 10] = 1.0f;
  return Tensor::from_vector(rows, {n, 10});
}

Tensor forward(UNet& net, const Tensor& x, const Tensor& t, const Tensor& c) { return net.forward(x, t, c); }

bool torch_available() {
  return std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") == 0;
}

// Removes the test's files when it ends without a failure (kept for inspection otherwise).
struct RemoveUnlessFailed {
  std::string dir;
  ~RemoveUnlessFailed() {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
  }
};

TEST(CheckpointParity, EngineCheckpointLoadsIntoPyTorchWithTheSameOutputs) {
  const std::string dir = output_dir();
  const RemoveUnlessFailed cleanup{dir};
  std::vector<std::string> commands;
  for (const Mode& mode : kModes) {
    SCOPED_TRACE(mode.name);
    Generator gen(2024);
    UNet net(kHidden, mode.conditioning, gen);
    const bool timed = mode.conditioning != UNetConditioning::none;
    const bool classed = mode.conditioning == UNetConditioning::time_and_class;
    // Two training steps on random data: the weights and the BatchNorm buffers move.
    Adam optimizer(net.parameters(), 1e-3);
    for (uint64_t step = 0; step < 2; ++step) {
      const Tensor x = testing::random_tensor({kBatch, 1, 28, 28}, 10 + step, 0.0f, 1.0f);
      const Tensor t = timed ? testing::random_tensor({kBatch, 1}, 20 + step, 0.0f, 1.0f) : Tensor();
      const Tensor c = classed ? class_rows(kBatch) : Tensor();
      Tensor loss = mse_loss(forward(net, x, t, c), x);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    }
    const std::string checkpoint = dir + "/engine_checkpoint_" + mode.name + ".safetensors";
    const std::string io_path = dir + "/engine_checkpoint_" + mode.name + "_io.safetensors";
    net.save(checkpoint);

    net.eval();
    NamedTensors io;
    io.emplace_back("input.x", testing::random_tensor({kBatch, 1, 28, 28}, 30, 0.0f, 1.0f));
    if (timed) io.emplace_back("input.t", testing::random_tensor({kBatch, 1}, 31, 0.0f, 1.0f));
    if (classed) io.emplace_back("input.c", class_rows(kBatch));
    const Tensor t = timed ? io[1].second : Tensor();
    const Tensor c = classed ? io[2].second : Tensor();
    Tensor out;
    {
      autograd::NoGradGuard no_grad;
      out = forward(net, io[0].second, t, c);
    }
    io.emplace_back("eval_out", out);
    save_safetensors(io_path, io, {{"mode", mode.name}});

    // 1. The engine reads its own checkpoint back: same outputs, bit for bit.
    Generator other(99);
    UNet reloaded(kHidden, mode.conditioning, other);
    reloaded.load(checkpoint, /*strict=*/true);
    reloaded.eval();
    {
      autograd::NoGradGuard no_grad;
      EXPECT_EQ(forward(reloaded, io[0].second, t, c).to_vector(), out.to_vector());
    }
    for (const auto& [name, buffer] : reloaded.named_buffers())
      if (buffer.dtype() == DType::I64) {
        EXPECT_EQ(buffer.to_vector_i64(), std::vector<int64_t>{2}) << name;
      }

    std::ostringstream command;
    command << "/usr/bin/python3 " << repo_root() << "/tools/parity/check_engine_checkpoint.py --checkpoint "
            << checkpoint << " --io " << io_path << " --mode " << mode.name << " --hidden " << kHidden;
    commands.push_back(command.str());
  }

  // 2. PyTorch reads it: needs /usr/bin/python3 with torch.
  if (!torch_available())
    GTEST_SKIP() << "engine -> PyTorch check skipped: /usr/bin/python3 cannot import torch "
                    "(apt-get install python3-torch libopenblas0-pthread); the engine's own round trip passed";
  for (const auto& command : commands) {
    const std::string log = dir + "/check.log";
    const int status = std::system((command + " > " + log + " 2>&1").c_str());
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(status, 0) << command << "\n" << text.str();
    std::cout << text.str();
  }
}

}  // namespace
}  // namespace engine
