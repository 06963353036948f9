// The denoiser app (Part 1), run in-process through denoiser_app::main exactly
// as the binary runs it: the UNet's size, command-line errors, an end-to-end
// training on real MNIST that must learn to denoise, `apply`, and --resume
// (after --stop-after-steps and after a real SIGINT) reproducing an
// uninterrupted run bit for bit.
//
// The training runs pass --threads 1: on a busy 2-core machine (CI, or the
// other jobs of this workplace) OpenMP's spinning worker threads make two
// threads ~5-10x slower than one; with one thread these runs take seconds.
#include "apps/common/denoiser_app.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "apps/common/checkpoint.h"
#include "apps/common/cli.h"
#include "apps/common/idx.h"
#include "apps/common/png.h"
#include "apps/common/report.h"
#include "core/autograd.h"
#include "core/json.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "models/unet.h"
#include "tests/apps/app_test_util.h"

namespace fs = std::filesystem;

namespace engine {
namespace {

struct AppResult {
  int status = -1;
  std::string err;  // what it printed on stderr
};

// Runs `denoiser <args>` in this process; restores the OpenMP thread count
// that --threads may have changed.
AppResult run_denoiser(const std::vector<std::string>& args) {
#ifdef _OPENMP
  const int threads = omp_get_max_threads();
#endif
  ::testing::internal::CaptureStderr();
  AppResult result;
  result.status = denoiser_app::main(args);
  result.err = ::testing::internal::GetCapturedStderr();
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  return result;
}

// The test's temporary folders are removed when it passes (and kept, for a
// look, when it fails).
class TempDirs : public ::testing::EmptyTestEventListener {
 public:
  static std::vector<std::string>& list() {
    static std::vector<std::string> dirs;
    return dirs;
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Passed()) {
      std::error_code ignored;
      for (const std::string& dir : list()) {
        fs::remove_all(dir, ignored);
        fs::remove(fs::path(dir).parent_path(), ignored);  // the per-process folder, once empty
      }
    }
    list().clear();
  }
};
const bool kTempDirsRegistered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new TempDirs);
  return true;
}();

std::string fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("engine_denoiser_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  TempDirs::list().push_back(dir.string());
  return dir.string();
}

using app_test::mnist_dir;

// The arguments every training run of these tests shares.
std::vector<std::string> train_args(const std::string& out, std::vector<std::string> extra) {
  std::vector<std::string> args = {"train", "--device", "cpu", "--threads", "1", "--data-dir", mnist_dir(), "--out", out};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

const json::Value& member(const json::Value& object, const std::string& key) {
  const json::Value* value = object.find(key);
  if (value == nullptr) throw Error("metrics.json has no '" + key + "'");
  return *value;
}

using app_test::read_file;

// --- The model -------------------------------------------------------------------------------------

// The PyTorch module tree's parameter count for D = 128, by hand
// (Conv2d(i, o, k): o*i*k*k weights + o biases; ConvTranspose2d likewise;
// BatchNorm2d(c): c weights + c biases, its running stats are buffers):
//   Conv(1,128)        = 1*128*9 + 128 + 2*128                         =     1,536
//   Conv(128,128)      = 128*128*9 + 128 + 256 (also the DownConv)     =   147,840
//   Conv(128,256)      = 128*256*9 + 256 + 512 (DownConv of down2)     =   295,680
//   Conv(256,256)      = 256*256*9 + 256 + 512                         =   590,592
//   Conv(256,128)      = 256*128*9 + 128 + 256 (outc's first)          =   295,296
//   inc    = Conv(1,128) + Conv(128,128)                                =   149,376
//   down1  = DownConv(128,128) + 2 Conv(128,128)                        =   443,520
//   down2  = DownConv(128,256) + 2 Conv(256,256)                        = 1,476,864
//   flat   = AvgPool2d + GELU                                           =         0
//   unflat = ConvT(256,256,7) 256*256*49 + 256 + BN 512                 = 3,212,032
//   up1    = ConvT(512,128,4) 512*128*16 + 128 + BN 256 + 2 Conv(128,128) = 1,344,640
//   up2    = ConvT(256,128,4) 256*128*16 + 128 + BN 256 + 2 Conv(128,128) =   820,352
//   outc   = Conv(256,128) + Conv(128,128)                              =   443,136
//   out    = Conv2d(128,1,3) 128*9 + 1                                  =     1,153
//   total                                                               = 7,891,073
// which is sum(p.numel() for p in model.parameters()) of the PyTorch model.
TEST(Denoiser, UNetD128HasThePyTorchParameterCountAndShape) {
  Generator gen(0);
  UNet model(128, UNetConditioning::none, gen);
  EXPECT_EQ(model.parameter_count(), 7891073);
  model.eval();
  autograd::NoGradGuard no_grad;
  const Tensor x = rand({2, 1, 28, 28}, gen);
  EXPECT_EQ(model.forward(x).shape(), (Shape{2, 1, 28, 28}));
}

// --- The command line ------------------------------------------------------------------------------

TEST(Denoiser, CommandLineErrorsStopBeforeAnyWork) {
  const std::string out = fresh_dir("cli_errors");
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"train", "--sigmaa", "0.5"}, "unknown flag '--sigmaa' (did you mean '--sigma'?)"},
      {{"train", "--sigma", "-0.5"}, "flag '--sigma': expected a number >= 0, got '-0.5'"},
      {{"train", "--batch-size", "0"}, "flag '--batch-size': expected an integer >= 1, got '0'"},
      {{"train", "--hidden", "0"}, "flag '--hidden': expected an integer >= 1, got '0'"},
      {{"train", "--hidden", "-8"}, "flag '--hidden': expected an integer >= 1, got '-8'"},
      {{"train", "--epochs", "two"}, "flag '--epochs': expected an integer, got 'two'"},
      {{"train", "--lr", "0"}, "flag '--lr': expected a number > 0, got '0'"},
      {{"train", "--device", "gpu"}, "flag '--device': expected cpu, cuda or cuda:N, got 'gpu'"},
      {{"--quick", "extra"}, "unexpected argument 'extra'"},
      {{"train", "--resume"}, "flag '--resume': needs --out DIR"},
      {{"apply", "--input", "x.png"}, "flag '--checkpoint' is required"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    if (args[0] == "train" && c.expected.find("--resume") == std::string::npos) {
      args.push_back("--out");
      args.push_back(out);
    }
    const AppResult result = run_denoiser(args);
    EXPECT_EQ(result.status, cli::kExitUsage) << c.expected;
    EXPECT_NE(result.err.find("denoiser: error: "), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(c.expected), std::string::npos) << "expected: " << c.expected << "\ngot: " << result.err;
    EXPECT_FALSE(fs::exists(out)) << "the run folder was created despite: " << c.expected;
  }

  // An --out that cannot be a folder (a path under a regular file: this fails
  // even for root, unlike a permission bit).
  fs::create_directories(out);
  std::ofstream(out + "/file") << "x";
  AppResult result = run_denoiser({"train", "--device", "cpu", "--out", out + "/file/run"});
  EXPECT_EQ(result.status, cli::kExitUsage);
  EXPECT_NE(result.err.find("flag '--out': cannot create the run folder '" + out + "/file/run'"), std::string::npos)
      << result.err;
  // --resume of a folder without a checkpoint.
  result = run_denoiser({"train", "--device", "cpu", "--resume", "--out", out});
  EXPECT_EQ(result.status, cli::kExitUsage);
  EXPECT_NE(result.err.find("has no checkpoint.safetensors to continue from"), std::string::npos) << result.err;
  // Missing data: an error that names the file and the fetch command.
  result = run_denoiser({"train", "--device", "cpu", "--data-dir", out + "/nothing", "--out", out + "/run"});
  EXPECT_EQ(result.status, cli::kExitError);
  EXPECT_NE(result.err.find(out + "/nothing"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("tools/fetch_mnist.sh"), std::string::npos) << result.err;

  // --help tells the truth: every flag the parser accepts is listed.
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(denoiser_app::main({"train", "--help"}), cli::kExitOk);
  const std::string help = ::testing::internal::GetCapturedStdout();
  for (const char* flag : {"--device", "--threads", "--seed", "--out", "--quick", "--resume", "--data-dir", "--dataset",
                           "--sigma NUM\n      noise level of the training pairs z = x + sigma*eps [>= 0; default: 0.5]",
                           "--batch-size INT\n      images per optimiser step [>= 1; default: 256]",
                           "--epochs INT\n      passes over the training images [>= 1; default: 5]",
                           "--lr NUM\n      Adam learning rate (constant) [> 0; default: 0.0001]",
                           "--hidden D\n      UNet hidden width D (channels of the first block) [>= 1; default: 128]",
                           "--train-images", "--eval-images", "--stop-after-steps"})
    EXPECT_NE(help.find(flag), std::string::npos) << flag << "\n" << help;
}

// --- apply -------------------------------------------------------------------------------------------

TEST(Denoiser, ApplyChecksItsInputsAndCheckpoints) {
  const std::string dir = fresh_dir("apply_errors");
  fs::create_directories(dir + "/in");
  Generator gen(1);
  UNet model(4, UNetConditioning::none, gen);
  model.save(dir + "/d4.safetensors");
  UNet timed(4, UNetConditioning::time, gen);
  timed.save(dir + "/timed.safetensors");
  image::write_png(dir + "/in/digit.png", image::Image(28, 28, 1, 0));
  image::write_png(dir + "/big.png", image::Image(32, 28, 1, 0));
  image::write_png(dir + "/rgb.png", image::Image(28, 28, 3, 0));

  AppResult r = run_denoiser({"apply", "--device", "cpu", "--checkpoint", dir + "/d4.safetensors", "--input",
                              dir + "/big.png", "--out", dir + "/o1"});
  EXPECT_EQ(r.status, cli::kExitError);
  EXPECT_NE(r.err.find("'" + dir + "/big.png' is 32x28 grayscale; expected a 28x28 grayscale PNG"), std::string::npos)
      << r.err;
  r = run_denoiser({"apply", "--device", "cpu", "--checkpoint", dir + "/d4.safetensors", "--input", dir + "/rgb.png",
                    "--out", dir + "/o1"});
  EXPECT_EQ(r.status, cli::kExitError);
  EXPECT_NE(r.err.find("is 28x28 color (RGB); expected a 28x28 grayscale PNG"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/o1"));

  // A checkpoint of another width: the first mismatching key, both shapes.
  r = run_denoiser({"apply", "--device", "cpu", "--hidden", "8", "--checkpoint", dir + "/d4.safetensors", "--input",
                    dir + "/in", "--out", dir + "/o2"});
  EXPECT_EQ(r.status, cli::kExitError);
  EXPECT_NE(r.err.find("checkpoint '" + dir + "/d4.safetensors' does not fit the unconditional UNet with D=8 "
                       "(denoiser): key 'inc.0.0.weight' has shape [4, 1, 3, 3] in the checkpoint but [8, 1, 3, 3] "
                       "in the model"),
            std::string::npos)
      << r.err;
  // A checkpoint of another kind of UNet.
  r = run_denoiser({"apply", "--device", "cpu", "--checkpoint", dir + "/timed.safetensors", "--input", dir + "/in",
                    "--out", dir + "/o2"});
  EXPECT_EQ(r.status, cli::kExitError);
  EXPECT_NE(r.err.find("key 'fc1_t.0.weight' (shape [8, 1]) is in the checkpoint but not in the model"),
            std::string::npos)
      << r.err;
  // Not a safetensors file at all.
  std::ofstream(dir + "/junk.safetensors") << "not a checkpoint";
  r = run_denoiser({"apply", "--device", "cpu", "--checkpoint", dir + "/junk.safetensors", "--input", dir + "/in",
                    "--out", dir + "/o2"});
  EXPECT_EQ(r.status, cli::kExitError);
  EXPECT_NE(r.err.find(dir + "/junk.safetensors"), std::string::npos) << r.err;
  // An empty folder, and a path that does not exist.
  fs::create_directories(dir + "/empty");
  r = run_denoiser({"apply", "--checkpoint", dir + "/d4.safetensors", "--input", dir + "/empty"});
  EXPECT_EQ(r.status, cli::kExitUsage);
  EXPECT_NE(r.err.find("holds no .png files"), std::string::npos) << r.err;
  r = run_denoiser({"apply", "--checkpoint", dir + "/d4.safetensors", "--input", dir + "/missing.png"});
  EXPECT_EQ(r.status, cli::kExitUsage);
  EXPECT_NE(r.err.find("is neither a PNG file nor a folder"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/o2"));
}

// apply's output is the model's eval-mode output, byte for byte, and a file
// laid out as PyTorch's safetensors.torch.save_file writes it (keys sorted,
// metadata {"format": "pt"}) is accepted.
TEST(Denoiser, ApplyWritesTheModelOutputAndAcceptsPyTorchFiles) {
  const std::string dir = fresh_dir("apply");
  fs::create_directories(dir + "/in");
  Generator gen(2);
  UNet model(4, UNetConditioning::none, gen);
  // Non-trivial running statistics, so that eval mode matters.
  for (int i = 0; i < 3; ++i) model.forward(rand({4, 1, 28, 28}, gen));
  NamedTensors sorted = model.state_dict();
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  save_safetensors(dir + "/torch.safetensors", sorted, {{"format", "pt"}});

  std::vector<image::Image> pictures;
  for (int i = 0; i < 3; ++i) {
    image::Image picture(28, 28, 1);
    Generator pixel_gen(10 + i);
    const std::vector<float> values = rand({784}, pixel_gen).to_vector();
    for (int p = 0; p < 784; ++p) picture.pixels[p] = image::to_byte(values[p]);
    image::write_png(dir + "/in/digit" + std::to_string(i) + ".png", picture);
    pictures.push_back(picture);
  }
  const AppResult r = run_denoiser({"apply", "--device", "cpu", "--checkpoint", dir + "/torch.safetensors", "--input",
                                    dir + "/in", "--out", dir + "/out"});
  ASSERT_EQ(r.status, cli::kExitOk) << r.err;
  EXPECT_NE(r.err.find("denoised 3 image(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("UNet D=4"), std::string::npos) << r.err;  // the width read from the checkpoint

  model.eval();
  autograd::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) {
    std::vector<float> input(784);
    for (int p = 0; p < 784; ++p) input[p] = static_cast<float>(pictures[i].pixels[p]) / 255.0f;
    const std::vector<float> expected = model.forward(Tensor::from_vector(input, {1, 1, 28, 28})).to_vector();
    const image::Image written = image::read_png(dir + "/out/digit" + std::to_string(i) + ".png");
    ASSERT_EQ(written.width, 28);
    ASSERT_EQ(written.channels, 1);
    for (int p = 0; p < 784; ++p) ASSERT_EQ(written.pixels[p], image::to_byte(expected[p])) << "image " << i << " pixel " << p;
  }
}

// --- Training ----------------------------------------------------------------------------------------

// A quick run on 1024 real training images (D = 8, batch 32, 2 epochs of 32
// steps, Adam lr 1e-3) must denoise: its test MSE at sigma = 0.5 must end
// below 0.05. The bound, and why it means "learned to denoise":
//   * the noisy input itself has MSE E[(sigma eps)^2] = sigma^2 = 0.25;
//   * the best guess that ignores the input, the mean test image, has MSE
//     0.0674 (the mean per-pixel variance of MNIST's test set), and an all-
//     black guess 0.114 (the mean of x^2);
// so below 0.05 the model beats the noisy input by 5x and must use the
// input's content. (Such runs reach ~0.017 here; PyTorch's full-size model
// reaches ~0.01.)
TEST(Denoiser, EndToEndQuickTrainingLearnsToDenoiseAndWritesEveryFile) {
  SKIP_WITHOUT_MNIST();
  const std::string out = fresh_dir("quick");
  const AppResult r = run_denoiser(train_args(out, {"--hidden", "8", "--batch-size", "32", "--train-images", "1024",
                                                    "--epochs", "2", "--lr", "1e-3", "--eval-images", "500"}));
  ASSERT_EQ(r.status, cli::kExitOk) << r.err;
  EXPECT_NE(r.err.find("epoch 2/2 done"), std::string::npos) << r.err;

  for (const char* file : {"report.html", "metrics.json", "losses.csv", "loss.png", "noising.png", "denoised_epoch_1.png",
                           "denoised_epoch_2.png", "ood.png", "model_epoch_1.safetensors", "model_epoch_2.safetensors",
                           "checkpoint.safetensors"})
    EXPECT_TRUE(fs::exists(out + "/" + file)) << file;

  const json::Value metrics = json::parse(read_file(out + "/metrics.json"));
  EXPECT_EQ(member(metrics, "steps").as_int(), 64);
  EXPECT_EQ(member(metrics, "parameters").as_int(), UNet(8, UNetConditioning::none).parameter_count());
  bool saw_half = false;
  for (const json::Value& row : member(metrics, "test_mse").as_array()) {
    const double sigma = member(row, "sigma").as_double();
    const double noisy = member(row, "noisy_mse").as_double(), denoised = member(row, "denoised_mse").as_double();
    // The noisy input's MSE is sigma^2 up to sampling error (500 x 784 values).
    EXPECT_NEAR(noisy, sigma * sigma, 0.01 * sigma * sigma + 1e-12) << "sigma " << sigma;
    if (sigma == 0.5) {
      saw_half = true;
      EXPECT_LT(denoised, 0.05) << "the denoiser did not learn (noisy input: " << noisy << ")";
    }
  }
  EXPECT_TRUE(saw_half);

  // Every step's loss, the first epoch's mean above the second's.
  const std::vector<float> losses = report::read_losses_csv(out + "/losses.csv");
  ASSERT_EQ(losses.size(), 64u);
  double first = 0, second = 0;
  for (int i = 0; i < 32; ++i) first += losses[i], second += losses[32 + i];
  EXPECT_LT(second, first);

  // The figures: 10 digits per row, rows as documented.
  const auto grid_height = [](int rows) { return rows * 30 + 2; };
  EXPECT_EQ(image::read_png(out + "/noising.png").height, grid_height(7));
  EXPECT_EQ(image::read_png(out + "/noising.png").width, 302);
  EXPECT_EQ(image::read_png(out + "/denoised_epoch_2.png").height, grid_height(3));
  EXPECT_EQ(image::read_png(out + "/ood.png").height, grid_height(14));
  const std::string html = read_file(out + "/report.html");
  for (const char* img : {"noising.png", "loss.png", "denoised_epoch_1.png", "denoised_epoch_2.png", "ood.png"})
    EXPECT_NE(html.find(std::string("<img src=\"") + img + "\""), std::string::npos) << img;
  EXPECT_NE(html.find("images/s"), std::string::npos);

  // The model-only checkpoint is the plain state dict (PyTorch's keys).
  const SafetensorsContents model_file = load_safetensors(out + "/model_epoch_2.safetensors");
  EXPECT_EQ(model_file.tensors.front().first, "inc.0.0.weight");
  EXPECT_TRUE(model_file.metadata.find("format") == model_file.metadata.end());

  // apply with the trained model: noisy test digits come out closer to the clean ones.
  const data::Dataset test = data::load_mnist(mnist_dir(), data::Split::test);
  fs::create_directories(out + "/noisy");
  Generator noise(7);
  double noisy_error = 0, denoised_error = 0;
  std::vector<std::vector<float>> clean_images;
  for (int i = 0; i < 8; ++i) {
    const std::vector<float> eps = randn({784}, noise).to_vector();
    image::Image picture(28, 28, 1);
    std::vector<float> clean(test.images.data<float>() + i * 784, test.images.data<float>() + (i + 1) * 784);
    for (int p = 0; p < 784; ++p) picture.pixels[p] = image::to_byte(clean[p] + 0.3f * eps[p]);
    image::write_png(out + "/noisy/" + std::to_string(i) + ".png", picture);
    for (int p = 0; p < 784; ++p) noisy_error += std::pow(picture.pixels[p] / 255.0 - clean[p], 2);
    clean_images.push_back(clean);
  }
  const AppResult applied = run_denoiser(
      {"apply", "--device", "cpu", "--checkpoint", out + "/model_epoch_2.safetensors", "--input", out + "/noisy", "--out", out + "/clean"});
  ASSERT_EQ(applied.status, cli::kExitOk) << applied.err;
  for (int i = 0; i < 8; ++i) {
    const image::Image picture = image::read_png(out + "/clean/" + std::to_string(i) + ".png");
    for (int p = 0; p < 784; ++p) denoised_error += std::pow(picture.pixels[p] / 255.0 - clean_images[i][p], 2);
  }
  EXPECT_LT(denoised_error, 0.5 * noisy_error);
}

// The arguments of the small runs that test resuming: 8 steps per epoch.
std::vector<std::string> resume_args(const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = train_args(out, {"--hidden", "4", "--batch-size", "32", "--train-images", "256",
                                                   "--epochs", "2", "--lr", "1e-3", "--eval-images", "32"});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Losses and final model of a finished run, from its training checkpoint.
ckpt::TrainingState final_state(const std::string& out) {
  return ckpt::load_training_checkpoint(out + "/" + ckpt::kTrainingCheckpointName);
}

void expect_same_run(const ckpt::TrainingState& a, const ckpt::TrainingState& b) {
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (size_t i = 0; i < a.losses.size(); ++i)
    EXPECT_EQ(a.losses[i], b.losses[i]) << "step " << i + 1;  // bit for bit, not approximately
  ASSERT_EQ(a.model.size(), b.model.size());
  for (size_t i = 0; i < a.model.size(); ++i) {
    const Tensor& x = a.model[i].second;
    const Tensor& y = b.model[i].second;
    if (x.dtype() == DType::F32) {
      EXPECT_EQ(x.to_vector(), y.to_vector()) << a.model[i].first;
    } else {
      EXPECT_EQ(x.to_vector_i64(), y.to_vector_i64()) << a.model[i].first;
    }
  }
  ASSERT_EQ(a.optimizer.size(), b.optimizer.size());
  for (size_t i = 0; i < a.optimizer.size(); ++i)
    if (a.optimizer[i].second.dtype() == DType::F32) {
      EXPECT_EQ(a.optimizer[i].second.to_vector(), b.optimizer[i].second.to_vector()) << a.optimizer[i].first;
    }
}

TEST(Denoiser, ResumeReproducesAnUninterruptedRunBitForBit) {
  SKIP_WITHOUT_MNIST();
  const std::string whole = fresh_dir("resume_whole"), pieces = fresh_dir("resume_pieces");
  ASSERT_EQ(run_denoiser(resume_args(whole)).status, cli::kExitOk);

  // Stopped mid-epoch (step 5 of 8), then at the epoch boundary (step 8),
  // then run to the end: three sessions.
  AppResult r = run_denoiser(resume_args(pieces, {"--stop-after-steps", "5"}));
  ASSERT_EQ(r.status, cli::kExitInterrupted) << r.err;
  EXPECT_NE(r.err.find("interrupted at step 5; checkpoint saved to " + pieces + "/checkpoint.safetensors"),
            std::string::npos)
      << r.err;
  // It says how to continue: the same command with --resume, without the stop.
  const size_t hint = r.err.find("continue with: denoiser train --device cpu");
  ASSERT_NE(hint, std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" --resume", hint), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("--stop-after-steps", hint), std::string::npos) << r.err;
  ckpt::TrainingState state = final_state(pieces);
  EXPECT_EQ(state.step, 5);
  EXPECT_EQ(state.epoch, 0);
  EXPECT_EQ(state.batch, 5);

  r = run_denoiser(resume_args(pieces, {"--resume", "--stop-after-steps", "8"}));
  ASSERT_EQ(r.status, cli::kExitInterrupted) << r.err;
  state = final_state(pieces);
  EXPECT_EQ(state.step, 8);
  EXPECT_EQ(state.epoch, 1);
  EXPECT_EQ(state.batch, 0);

  // Resuming with other settings is refused.
  r = run_denoiser(resume_args(pieces, {"--resume", "--sigma", "0.3"}));
  EXPECT_EQ(r.status, cli::kExitUsage);
  EXPECT_NE(r.err.find("was trained with sigma = 0.5, this command asks for sigma = 0.3"), std::string::npos) << r.err;
  // Starting a new run over an existing one is refused too.
  r = run_denoiser(resume_args(pieces));
  EXPECT_EQ(r.status, cli::kExitUsage);
  EXPECT_NE(r.err.find("already holds a run; continue it with --resume"), std::string::npos) << r.err;

  r = run_denoiser(resume_args(pieces, {"--resume"}));
  ASSERT_EQ(r.status, cli::kExitOk) << r.err;
  expect_same_run(final_state(pieces), final_state(whole));
  EXPECT_EQ(read_file(pieces + "/losses.csv"), read_file(whole + "/losses.csv"));
}

TEST(Denoiser, CtrlCSavesACheckpointAndResumeMatches) {
  SKIP_WITHOUT_MNIST();
  const std::string whole = fresh_dir("sigint_whole"), pieces = fresh_dir("sigint_pieces");
  auto args = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> a = train_args(out, {"--hidden", "4", "--batch-size", "32", "--train-images", "256",
                                                  "--epochs", "4", "--lr", "1e-3", "--eval-images", "32"});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  ASSERT_EQ(run_denoiser(args(whole, {})).status, cli::kExitOk);

  // A real SIGINT, sent once training has started (noising.png is written
  // after the handlers are installed; 32 steps follow).
  std::thread interrupter([&] {
    for (int i = 0; i < 2000 && !fs::exists(pieces + "/noising.png"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ::kill(::getpid(), SIGINT);
  });
  AppResult r = run_denoiser(args(pieces, {}));
  interrupter.join();
  ASSERT_EQ(r.status, cli::kExitInterrupted) << "the run was not interrupted:\n" << r.err;
  EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
  const int64_t stopped_at = final_state(pieces).step;
  EXPECT_LT(stopped_at, 32);

  r = run_denoiser(args(pieces, {"--resume"}));
  ASSERT_EQ(r.status, cli::kExitOk) << r.err;
  expect_same_run(final_state(pieces), final_state(whole));
}

TEST(Denoiser, NonFiniteLossStopsWithTheStepNumber) {
  SKIP_WITHOUT_MNIST();
  const std::string out = fresh_dir("diverge");
  // A learning rate of 1e30 sends the weights to ~1e30 after one Adam step;
  // the next forward pass overflows float (BatchNorm's variance ~1e60).
  const AppResult r = run_denoiser(train_args(out, {"--hidden", "4", "--batch-size", "32", "--train-images", "256",
                                                    "--epochs", "1", "--lr", "1e30", "--eval-images", "32"}));
  EXPECT_EQ(r.status, cli::kExitDiverged) << r.err;
  EXPECT_NE(r.err.find("at step 2 (epoch 1); training stopped"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out + "/checkpoint.safetensors"));  // nothing bad was saved as a checkpoint
  EXPECT_FALSE(fs::exists(out + "/model_epoch_1.safetensors"));
}

}  // namespace
}  // namespace engine
