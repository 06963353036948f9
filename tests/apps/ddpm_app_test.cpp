// The `ddpm` app end to end, run in-process through ddpm_app::main (the same
// code as the binary): bad flags are refused before any work, a small class
// model trained on real MNIST lowers its loss well below the start, `sample`
// writes every file it promises and refuses a checkpoint of the wrong kind or
// width, and --resume reproduces an uninterrupted run's losses exactly.
// The tests that need MNIST skip (naming tools/fetch_mnist.sh) without it.
#include <gtest/gtest.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "apps/common/ddpm_app.h"
#include "apps/common/png.h"
#include "apps/common/report.h"
#include "tests/apps/app_test_util.h"

namespace engine {
namespace {

namespace fs = std::filesystem;

struct AppResult {
  int status;
  std::string stderr_text;
};

// Runs the app with `args`, capturing what it writes to stderr.
AppResult run_app(const std::vector<std::string>& args) {
  ::testing::internal::CaptureStderr();
  const int status = ddpm_app::main(args);
  return {status, ::testing::internal::GetCapturedStderr()};
}

using app_test::mnist_dir;
std::string read_bytes(const std::string& path) { return app_test::read_file(path); }

// A fresh, empty folder for one test, removed when it ends.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void expect_contains(const std::string& text, const std::string& fragment) {
  EXPECT_NE(text.find(fragment), std::string::npos) << "'" << fragment << "' not in:\n" << text;
}

TEST(DdpmApp, RefusesBadFlagsBeforeAnyWork) {
  TempDir dir("ddpm_app_flags");
  AppResult r = run_app({"train", "--out", dir / "run"});
  EXPECT_EQ(r.status, 2);
  expect_contains(r.stderr_text, "--model");

  r = run_app({"train", "--model", "class", "--guidance", "200", "--out", dir / "run"});
  EXPECT_EQ(r.status, 2);
  expect_contains(r.stderr_text, "guidance");

  // A schedule whose alpha_bar_T underflows: refused before the run folder exists.
  r = run_app({"train", "--model", "class", "--num-steps", "100000", "--beta-start", "0.5", "--beta-end", "0.5", "--out",
               dir / "run"});
  EXPECT_EQ(r.status, 2);
  expect_contains(r.stderr_text, "alpha_bar_T");
  expect_contains(r.stderr_text, "--num-steps");
  r = run_app({"train", "--model", "time", "--beta-end", "1", "--out", dir / "run"});
  EXPECT_EQ(r.status, 2);
  expect_contains(r.stderr_text, "beta_end");
  EXPECT_FALSE(fs::exists(dir / "run"));

  r = run_app({"train", "--model", "class", "--sample-epochs", "1,x", "--out", dir / "run"});
  EXPECT_EQ(r.status, 2);
  expect_contains(r.stderr_text, "'x' is not an epoch number");

  r = run_app({"sample", "--model", "class", "--checkpoint", dir / "none.safetensors", "--digits", "3,12"});
  EXPECT_EQ(r.status, 2);
  expect_contains(r.stderr_text, "'12' is not a digit (0..9)");
  r = run_app({"sample", "--model", "class", "--checkpoint", dir / "none.safetensors", "--guidance", "-1"});
  EXPECT_EQ(r.status, 2);
  expect_contains(r.stderr_text, "guidance");
  r = run_app({"sample", "--model", "time", "--checkpoint", dir / "none.safetensors", "--digits", "3"});
  EXPECT_EQ(r.status, 2);
  expect_contains(r.stderr_text, "only for --model class");
  r = run_app({"sample", "--model", "class"});
  EXPECT_EQ(r.status, 2);
  expect_contains(r.stderr_text, "--checkpoint");
}

// Trains a small class model on 960 real MNIST digits (30 steps of 32,
// D = 8, lr 3e-3) with a compressed schedule: T = 30, betas 1e-3..0.2, whose
// alpha_bar_T = 0.034 covers the same range of noise levels as the
// assignment's T = 300 (alpha_bar_T = 0.048) at a tenth of the sampling cost.
// The loss starts near 1.1 (a fresh net's eps prediction is ~uncorrelated
// with eps, whose variance is 1); it must end, as the mean of the last 10
// steps, below 0.5 x the mean of the first 3 steps. Measured: ~1.0 -> ~0.3.
// Then `sample` uses the model this run wrote.
TEST(DdpmApp, ClassModelLearnsOnRealMnistAndSampleWritesItsFiles) {
  SKIP_WITHOUT_MNIST();
  TempDir dir("ddpm_app_learn");
  const std::string run = dir / "run";
  AppResult r = run_app({"train", "--model", "class", "--device", "cpu", "--hidden", "8", "--train-images", "960",
                         "--batch-size", "32", "--epochs", "1", "--lr", "3e-3", "--num-steps", "30", "--beta-start",
                         "1e-3", "--beta-end", "0.2", "--gif-frames", "8", "--data-dir", mnist_dir(), "--out", run});
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  for (const char* file : {"loss.png", "losses.csv", "samples_epoch_1.png", "denoising.gif", "checkpoint.safetensors",
                           "model.safetensors", "metrics.json", "report.html"})
    EXPECT_TRUE(fs::exists(fs::path(run) / file)) << file;

  const std::vector<float> losses = report::read_losses_csv(run + "/losses.csv");
  ASSERT_EQ(losses.size(), 30u);
  const double start = (losses[0] + losses[1] + losses[2]) / 3.0;
  double end = 0;
  for (size_t i = losses.size() - 10; i < losses.size(); ++i) end += losses[i] / 10.0;
  EXPECT_GT(start, 0.8) << "a fresh network should start near loss 1";
  EXPECT_LT(end, 0.5 * start) << "loss went from " << start << " to " << end;

  // The class grid: 10 rows (digits) of 4, each cell 28 + 2 padding.
  const image::Image grid = image::read_png(run + "/samples_epoch_1.png");
  EXPECT_EQ(grid.width, 4 * 30 + 2);
  EXPECT_EQ(grid.height, 10 * 30 + 2);
  const std::string report_html = read_bytes(run + "/report.html");
  expect_contains(report_html, "samples_epoch_1.png");
  expect_contains(report_html, "denoising.gif");

  // sample: 3 each of digits 3 and 7, with a GIF.
  const std::string out = dir / "samples";
  const std::vector<std::string> sample_args = {"sample", "--model", "class", "--checkpoint", run + "/model.safetensors",
                                                "--digits", "3,7", "--per-digit", "3", "--guidance", "2", "--seed",
                                                "5", "--gif", "--device", "cpu", "--out", out};
  r = run_app(sample_args);
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  const image::Image samples_png = image::read_png(out + "/samples.png");
  EXPECT_EQ(samples_png.width, 3 * 30 + 2);
  EXPECT_EQ(samples_png.height, 2 * 30 + 2);
  EXPECT_EQ(read_bytes(out + "/denoising.gif").substr(0, 6), "GIF89a");

  const std::string npy = read_bytes(out + "/samples.npy");
  ASSERT_GE(npy.size(), 10u);
  EXPECT_EQ(npy.substr(0, 6), "\x93NUMPY");
  const size_t header = static_cast<uint8_t>(npy[8]) | (static_cast<size_t>(static_cast<uint8_t>(npy[9])) << 8);
  EXPECT_EQ((10 + header) % 64, 0u);
  expect_contains(npy.substr(10, header), "'descr': '<f4', 'fortran_order': False, 'shape': (6, 1, 28, 28), }");
  ASSERT_EQ(npy.size(), 10 + header + 6 * 784 * sizeof(float));
  std::vector<float> values(6 * 784);
  std::memcpy(values.data(), npy.data() + 10 + header, values.size() * sizeof(float));
  for (float v : values) ASSERT_TRUE(std::isfinite(v));

  const std::string labels = read_bytes(out + "/labels.npy");
  const size_t labels_header = static_cast<uint8_t>(labels[8]) | (static_cast<size_t>(static_cast<uint8_t>(labels[9])) << 8);
  expect_contains(labels.substr(10, labels_header), "'descr': '<i8', 'fortran_order': False, 'shape': (6,), }");
  ASSERT_EQ(labels.size(), 10 + labels_header + 6 * sizeof(int64_t));
  std::vector<int64_t> digits(6);
  std::memcpy(digits.data(), labels.data() + 10 + labels_header, 6 * sizeof(int64_t));
  EXPECT_EQ(digits, (std::vector<int64_t>{3, 3, 3, 7, 7, 7}));

  // The same seed gives the same samples, bit for bit.
  std::vector<std::string> again = sample_args;
  again.back() = dir / "samples_again";
  ASSERT_EQ(run_app(again).status, 0);
  EXPECT_EQ(read_bytes(dir / "samples_again/samples.npy"), npy);

  // The wrong conditioning kind: the first key that does not fit is named.
  r = run_app({"sample", "--model", "time", "--checkpoint", run + "/model.safetensors", "--out", dir / "bad"});
  EXPECT_EQ(r.status, 1);
  expect_contains(r.stderr_text, "fc1_c.0.weight");
  expect_contains(r.stderr_text, "--model class");
  // The wrong width: key and both shapes.
  r = run_app({"sample", "--model", "class", "--hidden", "16", "--checkpoint", run + "/checkpoint.safetensors", "--out",
               dir / "bad"});
  EXPECT_EQ(r.status, 1);
  expect_contains(r.stderr_text, "inc.0.0.weight");
  expect_contains(r.stderr_text, "[8, 1, 3, 3]");
  expect_contains(r.stderr_text, "[16, 1, 3, 3]");
  EXPECT_FALSE(fs::exists(dir / "bad/samples.png"));
}

// An interrupted and resumed run equals an uninterrupted one: same losses
// (bit for bit, as printed with 9 significant digits) and the same final
// sample grid. Tiny: D = 4, 256 images, 2 epochs of 8 steps, T = 10.
#ifdef _OPENMP
TEST(DdpmApp, ThreadsFlagSetsTheCpuThreadCount) {
  // --threads takes effect before any work: here the run then stops at the
  // missing data folder.
  const int before = omp_get_max_threads();
  const int wanted = before == 1 ? 2 : 1;
  const AppResult r = run_app({"train", "--model", "time", "--device", "cpu", "--threads", std::to_string(wanted),
                               "--data-dir", "/nonexistent/mnist"});
  const int during = omp_get_max_threads();
  omp_set_num_threads(before);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(during, wanted) << r.stderr_text;
}
#endif

TEST(DdpmApp, ResumeGivesTheSameLossesAsAnUninterruptedRun) {
  SKIP_WITHOUT_MNIST();
  TempDir dir("ddpm_app_resume");
  const std::vector<std::string> base = {"train", "--model", "class", "--device", "cpu", "--hidden", "4",
                                         "--train-images", "256", "--batch-size", "32", "--epochs", "2",
                                         "--num-steps", "10", "--beta-start", "1e-3", "--beta-end", "0.3",
                                         "--gif-frames", "4", "--seed", "3", "--data-dir", mnist_dir()};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  AppResult r = run_app(with({"--out", dir / "whole"}));
  ASSERT_EQ(r.status, 0) << r.stderr_text;

  r = run_app(with({"--out", dir / "parts", "--stop-after-steps", "5"}));
  ASSERT_EQ(r.status, 130) << r.stderr_text;
  // The hint continues the run: --resume added, --stop-after-steps dropped.
  const std::size_t hint = r.stderr_text.find("continue with:");
  ASSERT_NE(hint, std::string::npos) << r.stderr_text;
  const std::string hint_line = r.stderr_text.substr(hint, r.stderr_text.find('\n', hint) - hint);
  expect_contains(hint_line, "--resume");
  EXPECT_EQ(hint_line.find("--stop-after-steps"), std::string::npos) << hint_line;
  r = run_app(with({"--out", dir / "parts", "--resume"}));
  ASSERT_EQ(r.status, 0) << r.stderr_text;

  const std::vector<float> whole = report::read_losses_csv(dir / "whole/losses.csv");
  const std::vector<float> parts = report::read_losses_csv(dir / "parts/losses.csv");
  ASSERT_EQ(whole.size(), 16u);
  EXPECT_EQ(parts, whole);
  EXPECT_EQ(read_bytes(dir / "parts/samples_epoch_2.png"), read_bytes(dir / "whole/samples_epoch_2.png"));

  // A resume with other settings is refused.
  r = run_app(with({"--out", dir / "parts", "--resume", "--lr", "0.5"}));
  EXPECT_NE(r.status, 0);
  expect_contains(r.stderr_text, "lr");
}

}  // namespace
}  // namespace engine
