// Training and model checkpoints (apps/common/checkpoint.h): a round trip
// restores every tensor and scalar exactly, and a checkpoint that does not
// fit is rejected with the first mismatching key and both shapes.
#include "apps/common/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "core/ops.h"
#include "layers/optim.h"
#include "models/unet.h"
#include "tests/apps/app_test_util.h"

namespace fs = std::filesystem;

namespace engine::ckpt {
namespace {

using app_test::error_of;

std::string temp_dir(const std::string& name) { return app_test::fresh_dir("engine_ckpt_test_" + name); }

void expect_same_tensors(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    ASSERT_EQ(a[i].second.shape(), b[i].second.shape()) << a[i].first;
    ASSERT_EQ(a[i].second.dtype(), b[i].second.dtype()) << a[i].first;
    if (a[i].second.dtype() == DType::F32) {
      EXPECT_EQ(a[i].second.to_vector(), b[i].second.to_vector()) << a[i].first;  // bit for bit
    } else {
      EXPECT_EQ(a[i].second.to_vector_i64(), b[i].second.to_vector_i64()) << a[i].first;
    }
  }
}

// A small UNet after two Adam steps: Adam's state and the BatchNorm buffers
// are all non-trivial.
struct Trained {
  Generator gen{3};
  UNet model{4, UNetConditioning::none, gen};
  Adam optimizer{model.parameters(), 1e-3};
  Trained() {
    for (int step = 0; step < 2; ++step) {
      const Tensor x = rand({2, 1, 28, 28}, gen);
      optimizer.zero_grad();
      mse_loss(model.forward(x), x).backward();
      optimizer.step();
    }
  }
};

TEST(Checkpoint, TrainingStateRoundTripIsExact) {
  Trained t;
  TrainingState state;
  state.model = t.model.state_dict();
  state.optimizer = t.optimizer.state_dict();
  state.lr = 1e-3 * 0.1;  // not exactly representable: must still round-trip
  state.scheduler_epoch = 4;
  state.epoch = 2;
  state.batch = 17;
  state.step = 3;
  state.train_seconds = 12.345678901;
  Generator loader(11), noise(12);
  loader.set_offset(5);
  noise.set_offset(uint64_t{1} << 40);
  state.generators.insert_or_assign("loader", loader);
  state.generators.insert_or_assign("noise", noise);
  state.losses = {0.5f, 0.25f, 1.0f / 3.0f};
  state.settings = {{"sigma", "0.5"}, {"batch_size", "256"}};

  const std::string path = temp_dir("roundtrip") + "/checkpoint.safetensors";
  save_training_checkpoint(path, state);
  const TrainingState back = load_training_checkpoint(path);
  expect_same_tensors(back.model, state.model);
  expect_same_tensors(back.optimizer, state.optimizer);
  EXPECT_EQ(back.lr, state.lr);
  EXPECT_EQ(back.scheduler_epoch, 4);
  EXPECT_EQ(back.epoch, 2);
  EXPECT_EQ(back.batch, 17);
  EXPECT_EQ(back.step, 3);
  EXPECT_EQ(back.train_seconds, state.train_seconds);
  ASSERT_EQ(back.generators.size(), 2u);
  EXPECT_EQ(back.generators.at("loader").seed(), 11u);
  EXPECT_EQ(back.generators.at("loader").offset(), 5u);
  EXPECT_EQ(back.generators.at("noise").offset(), uint64_t{1} << 40);
  EXPECT_EQ(back.losses, state.losses);
  EXPECT_EQ(back.settings, state.settings);

  // The state loads into a fresh model and optimiser, which then take the
  // same next step as the originals.
  Generator other(99);
  UNet model(4, UNetConditioning::none, other);
  Adam optimizer(model.parameters(), 1e-3);
  check_state_fits(model, back.model, path, "the test UNet");
  model.load_state_dict(back.model);
  optimizer.load_state_dict(back.optimizer);
  Generator data(5);
  const Tensor x = rand({2, 1, 28, 28}, data);
  auto step = [&](UNet& m, Adam& o) {
    o.zero_grad();
    mse_loss(m.forward(x), x).backward();
    o.step();
  };
  step(t.model, t.optimizer);
  step(model, optimizer);
  expect_same_tensors(model.state_dict(), t.model.state_dict());
}

TEST(Checkpoint, ModelStateFromEitherKindOfFile) {
  Trained t;
  const std::string dir = temp_dir("model_state");
  t.model.save(dir + "/model.safetensors");  // a plain state dict, as PyTorch writes one
  TrainingState state;
  state.model = t.model.state_dict();
  state.settings = {{"sigma", "0.5"}};
  save_training_checkpoint(dir + "/checkpoint.safetensors", state);
  expect_same_tensors(load_model_state(dir + "/model.safetensors"), t.model.state_dict());
  expect_same_tensors(load_model_state(dir + "/checkpoint.safetensors"), t.model.state_dict());

  // A model-only file cannot be resumed from.
  const std::string message = error_of([&] { load_training_checkpoint(dir + "/model.safetensors"); });
  EXPECT_NE(message.find("expected metadata format 'engine-training-checkpoint-1', got none (a model-only checkpoint "
                         "cannot be resumed)"),
            std::string::npos)
      << message;
}

TEST(Checkpoint, IncompleteTrainingCheckpointsAreRejected) {
  Trained t;
  const std::string dir = temp_dir("incomplete");
  // The losses must match the step count.
  TrainingState state;
  state.model = t.model.state_dict();
  state.step = 2;
  state.losses = {1.0f};
  EXPECT_NE(error_of([&] { save_training_checkpoint(dir + "/a.safetensors", state); }).find("1 losses for 2 steps"),
            std::string::npos);
  // A metadata entry missing.
  save_safetensors(dir + "/b.safetensors", {{"model.x", Tensor::zeros({1})}, {"train.losses", Tensor::zeros({0})}},
                   {{"format", "engine-training-checkpoint-1"}, {"epoch", "0"}});
  std::string message = error_of([&] { load_training_checkpoint(dir + "/b.safetensors"); });
  EXPECT_NE(message.find("metadata entry 'batch' is missing"), std::string::npos) << message;
  // A tensor of no known group.
  save_safetensors(dir + "/c.safetensors",
                   {{"model.x", Tensor::zeros({1})}, {"train.losses", Tensor::zeros({0})}, {"junk", Tensor::zeros({1})}},
                   {{"format", "engine-training-checkpoint-1"}, {"epoch", "0"}, {"batch", "0"}, {"step", "0"},
                    {"scheduler_epoch", "0"}, {"lr", "0.001"}, {"train_seconds", "0"}});
  message = error_of([&] { load_training_checkpoint(dir + "/c.safetensors"); });
  EXPECT_NE(message.find("unexpected tensor 'junk'"), std::string::npos) << message;
}

TEST(Checkpoint, MismatchNamesTheFirstKeyAndBothShapes) {
  Generator gen(0);
  UNet narrow(4, UNetConditioning::none, gen);
  UNet wide(8, UNetConditioning::none, gen);
  std::string message = error_of([&] { check_state_fits(wide, narrow.state_dict(), "narrow.safetensors", "UNet D=8"); });
  EXPECT_NE(message.find("checkpoint 'narrow.safetensors' does not fit UNet D=8: key 'inc.0.0.weight' has shape "
                         "[4, 1, 3, 3] in the checkpoint but [8, 1, 3, 3] in the model"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("more mismatching key(s)"), std::string::npos) << message;

  // Another kind of UNet: its extra keys are named.
  UNet timed(4, UNetConditioning::time, gen);
  message = error_of([&] { check_state_fits(narrow, timed.state_dict(), "timed.safetensors", "the denoiser"); });
  EXPECT_NE(message.find("key 'fc1_t.0.weight' (shape [8, 1]) is in the checkpoint but not in the model"),
            std::string::npos)
      << message;
  // And the other way round: the first missing key.
  message = error_of([&] { check_state_fits(timed, narrow.state_dict(), "narrow.safetensors", "the time UNet"); });
  EXPECT_NE(message.find("key 'fc1_t.0.weight' (shape [8, 1] in the model) is missing from the checkpoint"),
            std::string::npos)
      << message;
  // A matching state passes.
  EXPECT_NO_THROW(check_state_fits(narrow, narrow.state_dict(), "same", "same"));
}

TEST(Checkpoint, SettingsMustMatchToResume) {
  const std::map<std::string, std::string> saved = {{"sigma", "0.5"}, {"batch_size", "256"}};
  EXPECT_NO_THROW(check_same_settings(saved, saved, "ck"));
  std::string message =
      error_of([&] { check_same_settings(saved, {{"sigma", "0.5"}, {"batch_size", "64"}}, "runs/a/checkpoint.safetensors"); });
  EXPECT_NE(message.find("the checkpoint 'runs/a/checkpoint.safetensors' was trained with batch_size = 256, this "
                         "command asks for batch_size = 64"),
            std::string::npos)
      << message;
  message = error_of([&] { check_same_settings(saved, {{"sigma", "0.5"}}, "ck"); });
  EXPECT_NE(message.find("records setting batch_size = 256 that this program does not know"), std::string::npos)
      << message;
}

TEST(Checkpoint, DoubleTextRoundTrips) {
  for (double value : {0.0, 1e-4, 0.1, 1.0 / 3.0, 123456.789, 1e-300, -2.5}) {
    EXPECT_EQ(parse_double(double_text(value), "v"), value) << double_text(value);
  }
  EXPECT_EQ(double_text(1e-4), "0.0001");
  EXPECT_EQ(double_text(0.5), "0.5");
  EXPECT_THROW(parse_double("0.5x", "v"), Error);
}

}  // namespace
}  // namespace engine::ckpt
