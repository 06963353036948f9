#include "apps/common/run.h"

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <system_error>

#include "apps/common/cli.h"

namespace fs = std::filesystem;

namespace engine::run {

// --- The run folder ----------------------------------------------------------------------------

RunFolder::RunFolder(const std::string& path) : path_(path) {
  if (path.empty()) throw cli::UsageError("flag '--out': expected a folder, got ''");
  std::error_code error;
  if (fs::exists(path, error) && !fs::is_directory(path, error))
    throw cli::UsageError("flag '--out': '" + path + "' exists and is not a folder");
  fs::create_directories(path, error);
  if (error) throw cli::UsageError("flag '--out': cannot create the run folder '" + path + "': " + error.message());
  // Prove we can write there (permissions, read-only file systems, full disks):
  // create, write and delete a probe file.
  const std::string probe = file(".write-test." + std::to_string(::getpid()));
  {
    std::ofstream out(probe, std::ios::binary);
    out << "probe";
    out.flush();
    if (!out) {
      std::remove(probe.c_str());
      throw cli::UsageError("flag '--out': the run folder '" + path + "' is not writable");
    }
  }
  std::remove(probe.c_str());
}

std::string RunFolder::file(const std::string& name) const { return (fs::path(path_) / name).string(); }

bool RunFolder::exists(const std::string& name) const {
  std::error_code error;
  return fs::exists(file(name), error);
}

std::string default_run_folder(const std::string& app) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &local);
  return "runs/" + app + "-" + stamp;
}

// --- Stopping ----------------------------------------------------------------------------------

namespace {

// A lock-free atomic is safe to touch from a signal handler.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_interrupt_signal(int signal_number) {
  if (g_interrupted.load()) {
    // Second signal: give up waiting for the loop, die as the signal says.
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
    return;
  }
  g_interrupted.store(true);
}

}  // namespace

void install_interrupt_handlers() {
  std::signal(SIGINT, on_interrupt_signal);
  std::signal(SIGTERM, on_interrupt_signal);
}

bool interrupt_requested() { return g_interrupted.load(); }
void request_interrupt() { g_interrupted.store(true); }
void clear_interrupt() { g_interrupted.store(false); }

// --- Timing ------------------------------------------------------------------------------------

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char text[32];
  if (seconds < 10) {
    std::snprintf(text, sizeof(text), "%.1fs", seconds);
  } else if (seconds < 3600) {
    const auto s = static_cast<int64_t>(std::llround(seconds));
    if (s < 60) std::snprintf(text, sizeof(text), "%llds", static_cast<long long>(s));
    else std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    const auto m = static_cast<int64_t>(std::llround(seconds / 60));
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(m / 60), static_cast<long long>(m % 60));
  }
  return text;
}

// --- Losses ------------------------------------------------------------------------------------

void LossHistory::push(const Tensor& loss) {
  ENGINE_CHECK(loss.defined() && loss.numel() == 1, "LossHistory::push: expected a one-element loss tensor, got ",
               loss.defined() ? shape_str(loss.shape()) : std::string("an undefined tensor"));
  pending_.push_back(loss.detach());
}

void LossHistory::flush() {
  for (const Tensor& loss : pending_) {
    const float value = loss.item();
    if (!std::isfinite(value) && !first_non_finite_) first_non_finite_ = static_cast<int64_t>(values_.size());
    values_.push_back(value);
  }
  pending_.clear();
}

std::optional<int64_t> LossHistory::first_non_finite() {
  flush();
  return first_non_finite_;
}

std::optional<int64_t> LossHistory::poll_non_finite() {
  if (static_cast<int64_t>(pending_.size()) >= read_every_) flush();
  return first_non_finite_;
}

void LossHistory::assign(std::vector<float> values) {
  pending_.clear();
  values_ = std::move(values);
  first_non_finite_.reset();
  for (size_t i = 0; i < values_.size() && !first_non_finite_; ++i)
    if (!std::isfinite(values_[i])) first_non_finite_ = static_cast<int64_t>(i);
}

double LossHistory::mean(int64_t begin, int64_t end) {
  flush();
  ENGINE_CHECK(0 <= begin && begin <= end && end <= size(), "LossHistory::mean: range [", begin, ", ", end,
               ") is outside [0, ", size(), ")");
  if (begin == end) return std::nan("");
  double total = 0;
  for (int64_t i = begin; i < end; ++i) total += values_[static_cast<size_t>(i)];
  return total / static_cast<double>(end - begin);
}

// --- Progress ----------------------------------------------------------------------------------

Progress::Progress(const ProgressOptions& options, std::ostream* out)
    : options_(options), out_(out != nullptr ? out : &std::cerr), tty_(out == nullptr && ::isatty(STDERR_FILENO)) {}

void Progress::start_at(int64_t steps_done) {
  step_ = steps_done;
  last_printed_step_ = steps_done;
  since_print_.restart();
}

void Progress::step_done(int64_t images, double seconds, LossHistory& losses) {
  ++step_;
  ++session_steps_;
  images_ += images;
  seconds_ += seconds;
  const double interval = tty_ ? options_.interval_tty_s : options_.interval_log_s;
  // Always show the first step of the session (it tells the user the speed
  // early) and the last step of the run.
  if (session_steps_ == 1 || step_ == options_.total_steps || since_print_.seconds() >= interval) print_line(losses);
}

void Progress::print_line(LossHistory& losses) {
  const int64_t epoch = options_.steps_per_epoch > 0 ? (step_ - 1) / options_.steps_per_epoch + 1 : 0;
  const double loss = losses.mean(std::max<int64_t>(last_printed_step_, 0), std::min(step_, losses.size()));
  const double per_step = seconds_ / static_cast<double>(session_steps_);
  const double eta = per_step * static_cast<double>(options_.total_steps - step_);
  std::ostringstream line;
  line << "epoch " << epoch << "/" << options_.epochs << "  step " << step_ << "/" << options_.total_steps
       << "  loss " << std::setprecision(5) << std::fixed << loss << "  " << std::setprecision(1)
       << images_per_second() << " img/s  ETA " << format_duration(eta);
  if (tty_) {
    *out_ << "\r" << line.str() << "\033[K" << std::flush;  // \033[K: clear the rest of the line
    line_open_ = true;
  } else {
    *out_ << line.str() << std::endl;
  }
  last_printed_step_ = step_;
  since_print_.restart();
}

void Progress::note(const std::string& message) {
  if (line_open_) *out_ << "\n";
  line_open_ = false;
  *out_ << message << std::endl;
}

}  // namespace engine::run
