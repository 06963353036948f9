// The shared training loop (apps/common/training_loop.h) on a tiny problem,
// a Linear layer fitted to noisy labels: a run interrupted twice (mid-epoch
// and at an epoch boundary) and resumed gives the uninterrupted run's losses
// bit for bit; a NaN loss stops with the step number; a resume with other
// settings is a usage error; the run-folder checks.
#include "apps/common/training_loop.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "apps/common/report.h"
#include "core/ops.h"
#include "layers/layers.h"
#include "tests/apps/app_test_util.h"

namespace engine::training {
namespace {

// 20 items of shape [1, 2, 3]; item i holds the values i/20 + k/6, label i % 10.
data::Dataset tiny_dataset() {
  const int64_t n = 20;
  std::vector<float> values;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < 6; ++k) values.push_back(static_cast<float>(i) / 20.0f + static_cast<float>(k) / 6.0f);
  data::Dataset dataset;
  dataset.images = Tensor::from_vector(values, {n, 1, 2, 3});
  for (int64_t i = 0; i < n; ++i) dataset.labels.push_back(i % 10);
  dataset.description = "tiny";
  return dataset;
}

struct Outcome {
  int status = -1;
  std::vector<float> losses;
  std::string messages;
};

// One session of a run in `folder` (3 epochs of batches of 6: 4 steps each,
// the last of 2 items): a fresh Linear(6, 1) from seed 0, Adam with
// ExponentialLR, the loader's generator from seed 1, the step's noise from
// seed 2. The model's input is x + 0.1 eps, its target the label; `lr` and
// `stop_after_steps` as in the apps.
Outcome train_session(const std::string& folder, bool resume, int64_t stop_after_steps, double lr = 0.05) {
  const data::Dataset dataset = tiny_dataset();
  Generator init_gen(0);
  Linear model(6, 1, true, init_gen);
  Adam optimizer(model.parameters(), lr);
  ExponentialLR lr_schedule(optimizer, 0.5);
  data::DataLoader loader(dataset, {.batch_size = 6, .shuffle = true}, Generator(1));
  Generator noise_gen(2);

  TrainingLoopSetup setup;
  setup.program = "tiny";
  setup.run_folder = folder;
  setup.settings = {{"lr", ckpt::double_text(lr)}};
  setup.model_description = "the tiny Linear";
  setup.epochs = 3;
  setup.continue_command = "tiny train";
  setup.resume_given = resume;
  setup.out_given = true;
  setup.stop_after_steps = stop_after_steps;
  TrainingLoop loop(setup, {model, optimizer, &lr_schedule, loader, noise_gen});

  ::testing::internal::CaptureStderr();
  Outcome outcome;
  try {
    if (resume) loop.resume();
    loop.begin();
    auto step = [&](const data::Batch& batch) {
      const int64_t rows = batch.size();
      const Tensor x = batch.images.reshape({rows, 6});
      const Tensor noisy = add(x, scale(randn(x.shape(), noise_gen), 0.1f));
      std::vector<float> labels;
      for (int64_t label : batch.labels) labels.push_back(static_cast<float>(label));
      return mse_loss(model.forward(noisy), Tensor::from_vector(labels, {rows, 1}));
    };
    outcome.status = loop.run(step, [](int64_t) {});
  } catch (...) {
    outcome.messages = ::testing::internal::GetCapturedStderr();
    throw;
  }
  outcome.messages = ::testing::internal::GetCapturedStderr();
  loop.losses().flush();
  outcome.losses = loop.losses().values();
  return outcome;
}

TEST(TrainingLoop, InterruptedAndResumedRunsGiveTheUninterruptedLossesBitForBit) {
  const std::string whole = app_test::fresh_dir("engine_training_loop_test_whole");
  const Outcome reference = train_session(whole, false, 0);
  ASSERT_EQ(reference.status, cli::kExitOk) << reference.messages;
  ASSERT_EQ(reference.losses.size(), 12u);  // 3 epochs x 4 steps
  EXPECT_EQ(report::read_losses_csv(whole + "/losses.csv"), reference.losses);
  EXPECT_TRUE(std::filesystem::exists(whole + "/loss.png"));
  const ckpt::TrainingState final_state = ckpt::load_training_checkpoint(whole + "/checkpoint.safetensors");
  EXPECT_EQ(final_state.epoch, 3);
  EXPECT_EQ(final_state.scheduler_epoch, 3);
  EXPECT_DOUBLE_EQ(final_state.lr, 0.05 * 0.125);

  // Stop mid-epoch 2 (after step 6), then exactly at the end of epoch 2
  // (step 8: the checkpoint is the end-of-epoch one, whose loader offset is
  // the CURRENT one), then finish.
  const std::string pieces = app_test::fresh_dir("engine_training_loop_test_pieces");
  Outcome part = train_session(pieces, false, 6);
  ASSERT_EQ(part.status, cli::kExitInterrupted) << part.messages;
  EXPECT_NE(part.messages.find("tiny: interrupted at step 6; checkpoint saved to " + pieces +
                               "/checkpoint.safetensors\n  continue with: tiny train --resume"),
            std::string::npos)
      << part.messages;
  ckpt::TrainingState state = ckpt::load_training_checkpoint(pieces + "/checkpoint.safetensors");
  EXPECT_EQ(state.epoch, 1);
  EXPECT_EQ(state.batch, 2);

  part = train_session(pieces, true, 8);
  ASSERT_EQ(part.status, cli::kExitInterrupted) << part.messages;
  EXPECT_NE(part.messages.find("tiny: interrupted after epoch 2"), std::string::npos) << part.messages;
  EXPECT_EQ(part.messages.find("--resume --resume"), std::string::npos) << part.messages;
  state = ckpt::load_training_checkpoint(pieces + "/checkpoint.safetensors");
  EXPECT_EQ(state.epoch, 2);
  EXPECT_EQ(state.batch, 0);

  part = train_session(pieces, true, 0);
  ASSERT_EQ(part.status, cli::kExitOk) << part.messages;
  EXPECT_EQ(part.losses, reference.losses);
  EXPECT_EQ(report::read_losses_csv(pieces + "/losses.csv"), reference.losses);
}

TEST(TrainingLoop, ResumeWithOtherSettingsIsAUsageError) {
  const std::string dir = app_test::fresh_dir("engine_training_loop_test_settings");
  ASSERT_EQ(train_session(dir, false, 3).status, cli::kExitInterrupted);
  const std::string message = app_test::error_of<cli::UsageError>([&] { train_session(dir, true, 0, 0.5); });
  EXPECT_NE(message.find("lr"), std::string::npos) << message;
}

TEST(TrainingLoop, NonFiniteLossStopsWithTheStepAndKeepsNoBadCheckpoint) {
  const std::string dir = app_test::fresh_dir("engine_training_loop_test_nan");
  // lr 1e30: after the first Adam step the weights are ~1e30 and the next
  // loss (~1e60 squared) overflows float.
  const Outcome outcome = train_session(dir, false, 0, 1e30);
  EXPECT_EQ(outcome.status, cli::kExitDiverged);
  EXPECT_NE(outcome.messages.find("tiny: the loss became inf at step 2 (epoch 1); training stopped"),
            std::string::npos)
      << outcome.messages;
  EXPECT_FALSE(std::filesystem::exists(dir + "/checkpoint.safetensors"));
  EXPECT_EQ(report::read_losses_csv(dir + "/losses.csv").size(), 2u);
}

TEST(TrainingLoop, RunFolderChecksComeBeforeAnyWork) {
  const std::string dir = app_test::fresh_dir("engine_training_loop_test_folder");
  // The folder a command with `args` opens ("" and the UsageError's message in `message`).
  auto open = [&](const std::vector<std::string>& args, std::string* message) {
    cli::CommonOptions options;
    cli::Command command("tiny", "train", "");
    cli::add_out_flag(command, options, "runs/tiny");
    cli::add_training_flags(command, options, "the tiny preset");
    command.parse(args);
    try {
      return open_run_folder(options, command, dir + "/default").path();
    } catch (const cli::UsageError& e) {
      *message = e.what();
      return std::string();
    }
  };
  std::string message;
  EXPECT_EQ(open({}, &message), dir + "/default");  // no --out: the default folder
  EXPECT_EQ(open({"--resume"}, &message), "");
  EXPECT_NE(message.find("flag '--resume': needs --out DIR"), std::string::npos) << message;
  EXPECT_EQ(open({"--out", dir + "/run", "--resume"}, &message), "");
  EXPECT_NE(message.find("has no checkpoint.safetensors to continue from"), std::string::npos) << message;
  // A run folder that holds a checkpoint: only --resume may open it.
  ASSERT_EQ(train_session(dir + "/run", false, 1).status, cli::kExitInterrupted);
  EXPECT_EQ(open({"--out", dir + "/run"}, &message), "");
  EXPECT_NE(message.find("already holds a run; continue it with --resume"), std::string::npos) << message;
  EXPECT_EQ(open({"--out", dir + "/run", "--resume"}, &message), dir + "/run");
}

}  // namespace
}  // namespace engine::training
