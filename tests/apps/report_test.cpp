// The run infrastructure (apps/common/run.h) and the report writers
// (apps/common/report.h): run folders, loss history, progress lines, HTML,
// JSON and CSV.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "apps/common/cli.h"
#include "apps/common/report.h"
#include "apps/common/run.h"
#include "core/json.h"
#include "tests/apps/app_test_util.h"

namespace fs = std::filesystem;

namespace engine {
namespace {

// An absent folder: the code under test must create it.
std::string temp_dir(const std::string& name) {
  return app_test::fresh_dir("engine_report_test_" + name, /*create=*/false);
}

using app_test::read_file;

TEST(RunFolder, CreatesTheFolderAndChecksItIsWritable) {
  const std::string dir = temp_dir("folder") + "/a/b";
  const run::RunFolder folder(dir);
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(folder.file("x.png"), dir + "/x.png");
  EXPECT_FALSE(folder.exists("x.png"));
  EXPECT_TRUE(fs::is_empty(dir));  // the probe file is gone
}

TEST(RunFolder, UnusableFoldersAreUsageErrors) {
  // A regular file where a folder should be, and a folder under it (this
  // fails even for root, unlike a permission bit).
  const std::string dir = temp_dir("unusable");
  fs::create_directories(dir);
  std::ofstream(dir + "/file") << "x";
  try {
    run::RunFolder folder(dir + "/file");
    ADD_FAILURE() << "expected a UsageError";
  } catch (const cli::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("flag '--out': '" + dir + "/file' exists and is not a folder"),
              std::string::npos)
        << e.what();
  }
  try {
    run::RunFolder folder(dir + "/file/run");
    ADD_FAILURE() << "expected a UsageError";
  } catch (const cli::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("flag '--out': cannot create the run folder '" + dir + "/file/run'"),
              std::string::npos)
        << e.what();
  }
}

TEST(LossHistory, ReadsLazilyAndFindsTheFirstNonFiniteLoss) {
  run::LossHistory history(3);  // read every 3 pending losses
  history.push(Tensor::scalar(0.5f));
  history.push(Tensor::scalar(std::numeric_limits<float>::quiet_NaN()));
  EXPECT_EQ(history.size(), 2);
  EXPECT_TRUE(history.values().empty());         // nothing read yet
  EXPECT_FALSE(history.poll_non_finite());       // 2 < 3 pending: not read
  history.push(Tensor::scalar(std::numeric_limits<float>::infinity()));
  const auto bad = history.poll_non_finite();    // 3 pending: read
  ASSERT_TRUE(bad);
  EXPECT_EQ(*bad, 1);                            // the NaN, not the later inf
  EXPECT_EQ(history.values().size(), 3u);
  EXPECT_THROW(history.push(Tensor::zeros({2})), Error);

  history.assign({1.0f, 2.0f, 4.0f});
  EXPECT_FALSE(history.first_non_finite());
  EXPECT_DOUBLE_EQ(history.mean(1, 3), 3.0);
  EXPECT_THROW(history.mean(2, 5), Error);
}

TEST(Progress, PrintsEpochStepLossSpeedAndEta) {
  std::ostringstream out;
  run::ProgressOptions options;
  options.total_steps = 10;
  options.steps_per_epoch = 5;
  options.epochs = 2;
  options.interval_log_s = 1e9;  // only the first and the last step print
  run::Progress progress(options, &out);
  run::LossHistory losses;
  for (int step = 0; step < 10; ++step) {
    losses.push(Tensor::scalar(static_cast<float>(step)));
    progress.step_done(100, 0.5, losses);
  }
  // First line: step 1, loss 0, 200 img/s, 9 steps x 0.5 s left. Last: the
  // mean loss of steps 2..10 = 5.
  EXPECT_EQ(out.str(),
            "epoch 1/2  step 1/10  loss 0.00000  200.0 img/s  ETA 4.5s\n"
            "epoch 2/2  step 10/10  loss 5.00000  200.0 img/s  ETA 0.0s\n");
  EXPECT_DOUBLE_EQ(progress.images_per_second(), 200.0);
  EXPECT_DOUBLE_EQ(progress.train_seconds(), 5.0);
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(run::format_duration(0.84), "0.8s");
  EXPECT_EQ(run::format_duration(45), "45s");
  EXPECT_EQ(run::format_duration(192), "3m12s");
  EXPECT_EQ(run::format_duration(7500), "2h05m");
  EXPECT_EQ(run::format_duration(std::nan("")), "?");
}

TEST(Interrupts, RequestAndClear) {
  run::clear_interrupt();
  EXPECT_FALSE(run::interrupt_requested());
  run::request_interrupt();
  EXPECT_TRUE(run::interrupt_requested());
  run::clear_interrupt();
  EXPECT_FALSE(run::interrupt_requested());
}

TEST(Report, HtmlEscapesAndHoldsEverySection) {
  report::Html page("Run <1>");
  page.key_values("Settings", {{"sigma", "0.5"}, {"name", "a&b"}});
  page.section("Figures");
  page.figure("loss.png", "Loss \"per step\"");
  page.table({"sigma", "MSE"}, {{"0.5", "0.01"}}, "Test MSE");
  page.paragraph("x < y");
  const std::string html = page.str();
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<title>Run &lt;1&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("<tr><th>name</th><td>a&amp;b</td></tr>"), std::string::npos);
  EXPECT_NE(html.find("<h2>Figures</h2>"), std::string::npos);
  EXPECT_NE(html.find("<img src=\"loss.png\" alt=\"Loss &quot;per step&quot;\">"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>0.5</td><td>0.01</td></tr>"), std::string::npos);
  EXPECT_NE(html.find("<p>x &lt; y</p>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained, static
  EXPECT_EQ(html.find("http"), std::string::npos);     // nothing fetched
  EXPECT_THROW(page.table({"a", "b"}, {{"1"}}), Error);

  const std::string dir = temp_dir("html");
  fs::create_directories(dir);
  page.write(dir + "/report.html");
  EXPECT_EQ(read_file(dir + "/report.html"), html);
}

TEST(Report, MetricsJsonParsesBack) {
  json::Value metrics;
  metrics.set("steps", 10);
  metrics.set("mse", 0.0123);
  const std::string dir = temp_dir("json");
  fs::create_directories(dir);
  report::write_json(dir + "/metrics.json", metrics);
  EXPECT_EQ(json::parse(read_file(dir + "/metrics.json")), metrics);
}

TEST(Report, LossesCsvRoundTripsEveryFloatExactly) {
  const std::vector<float> losses = {0.25f, 1.0f / 3.0f, 1e-7f, 123.456f, 0.1f};
  const std::string dir = temp_dir("csv");
  fs::create_directories(dir);
  report::write_losses_csv(dir + "/losses.csv", losses, 2);
  const std::string text = read_file(dir + "/losses.csv");
  EXPECT_EQ(text.substr(0, text.find('\n', text.find('\n') + 1) + 1), "step,epoch,loss\n1,1,0.25\n");
  EXPECT_NE(text.find("\n3,2,"), std::string::npos);
  EXPECT_NE(text.find("\n5,3,"), std::string::npos);
  EXPECT_EQ(report::read_losses_csv(dir + "/losses.csv"), losses);

  std::ofstream(dir + "/bad.csv") << "step,epoch,loss\n1,1,0.5\n3,1,0.5\n";
  EXPECT_THROW(report::read_losses_csv(dir + "/bad.csv"), Error);
}

}  // namespace
}  // namespace engine
