// The life of a training run, shared by the apps: its folder, its progress
// line, its loss history, and how it stops (Ctrl-C or a diverging loss).
//
// A training loop built on it looks like this (apps/denoiser.cpp is one):
//
//   run::RunFolder folder(options.out);          // created and write-checked first
//   run::install_interrupt_handlers();           // Ctrl-C / SIGTERM only set a flag
//   run::LossHistory losses;
//   run::Progress progress({.total_steps = ..., .steps_per_epoch = ..., .epochs = ...});
//   for (each epoch, each batch) {
//     if (run::interrupt_requested()) { save a checkpoint; return cli::kExitInterrupted; }
//     const run::Stopwatch step_time;
//     ... forward, backward, optimiser step ...
//     losses.push(loss);                         // kept on the device, not read yet
//     progress.step_done(batch_images, step_time.seconds(), losses);
//     if (auto bad = losses.first_non_finite()) { report *bad; return cli::kExitDiverged; }
//   }
//
// Why losses are not read every step: reading a GPU value back makes the host
// wait for the device, which would serialise every step. LossHistory keeps
// the [] loss tensors and reads them in one go when progress is shown (about
// once a second) or when asked (before a checkpoint); on the CPU reading is
// free, so nothing changes there.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace engine::run {

// --- The run folder ----------------------------------------------------------------------------
// Creates `path` (and its parents) if needed and proves it writable by
// creating and deleting a probe file, so that a bad --out fails before any
// work starts. Throws cli::UsageError("flag '--out': cannot ...") naming
// the folder and the reason.
class RunFolder {
 public:
  explicit RunFolder(const std::string& path);
  const std::string& path() const { return path_; }
  // path/name.
  std::string file(const std::string& name) const;
  bool exists(const std::string& name) const;

 private:
  std::string path_;
};

// "runs/<app>-YYYYMMDD-HHMMSS" (local time): the default --out of a training app.
std::string default_run_folder(const std::string& app);

// --- Stopping: Ctrl-C and SIGTERM ---------------------------------------------------------------
// After install_interrupt_handlers(), the first SIGINT or SIGTERM only sets a
// flag that the training loop polls between steps (interrupt_requested()),
// so it can save a checkpoint and exit cleanly; a second one while the flag
// is still set ends the process at once (the default action), for a loop
// that is stuck.
void install_interrupt_handlers();
bool interrupt_requested();
// Sets the flag as a signal would (used by --stop-after-steps and tests).
void request_interrupt();
void clear_interrupt();

// --- Timing ---------------------------------------------------------------------------------
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  void restart() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

// "2h05m", "3m12s", "45s", "0.8s".
std::string format_duration(double seconds);

// --- Losses ------------------------------------------------------------------------------------
// The per-step training loss, in step order, read back lazily (see above).
class LossHistory {
 public:
  // read_every: how many pending losses poll_non_finite() lets accumulate
  // before it reads them (1 on the CPU, where reading costs nothing; ~50 on
  // a GPU, so that the host waits for the device only every 50 steps).
  explicit LossHistory(int64_t read_every = 1) : read_every_(read_every < 1 ? 1 : read_every) {}

  // Appends the loss of the next step: a one-element tensor on any device.
  // Only a detached handle is kept (the graph is not held alive).
  void push(const Tensor& loss);
  // Reads every pending loss to the host (one device synchronisation).
  void flush();
  // Number of steps recorded (read or not).
  int64_t size() const { return static_cast<int64_t>(values_.size() + pending_.size()); }
  // The values read so far; call flush() first to have them all.
  const std::vector<float>& values() const { return values_; }
  // Flushes, then returns the 0-based index of the first NaN or infinite
  // loss, if any.
  std::optional<int64_t> first_non_finite();
  // The same, but reads only once read_every losses are pending (call it
  // every step): a NaN is caught at most read_every - 1 steps late.
  std::optional<int64_t> poll_non_finite();
  // Replaces the history (when a run is resumed from a checkpoint).
  void assign(std::vector<float> values);
  // Mean of the losses with index in [begin, end) (flushes first).
  double mean(int64_t begin, int64_t end);

 private:
  int64_t read_every_;
  std::vector<float> values_;
  std::vector<Tensor> pending_;
  std::optional<int64_t> first_non_finite_;
};

// --- Progress on stderr -----------------------------------------------------------------------
struct ProgressOptions {
  int64_t total_steps = 0;       // over the whole run (all epochs)
  int64_t steps_per_epoch = 0;
  int64_t epochs = 0;
  // Seconds between progress lines. On a terminal the line is redrawn in
  // place ('\r') every interval_tty_s; into a file or pipe a new line is
  // written every interval_log_s (so logs stay readable).
  double interval_tty_s = 1.0;
  double interval_log_s = 10.0;
};

// Prints, e.g.
//   epoch 2/5  step 312/1175  loss 0.01234  412.3 img/s  ETA 3m12s
// where loss is the mean of the steps since the last line, img/s counts
// training steps only (time spent on figures and evaluation is excluded),
// and ETA = remaining steps x mean step time so far in this session.
class Progress {
 public:
  explicit Progress(const ProgressOptions& options, std::ostream* out = nullptr /* std::cerr */);

  // Where the run starts (a resumed run starts at step > 0).
  void start_at(int64_t steps_done);
  // One optimiser step of `images` images took `seconds`; the step's loss is
  // the last entry of `losses`. Prints a line when the interval has passed
  // (flushing `losses` then, and only then).
  void step_done(int64_t images, double seconds, LossHistory& losses);
  // Ends the current line (on a terminal) and prints `message` on its own line.
  void note(const std::string& message);

  // Training throughput over this session.
  double images_per_second() const { return seconds_ > 0 ? static_cast<double>(images_) / seconds_ : 0.0; }
  double train_seconds() const { return seconds_; }
  int64_t images() const { return images_; }

 private:
  void print_line(LossHistory& losses);

  ProgressOptions options_;
  std::ostream* out_;
  bool tty_;
  bool line_open_ = false;
  int64_t step_ = 0;            // steps done, including those before a resume
  int64_t session_steps_ = 0;   // steps done in this process
  int64_t images_ = 0;          // images trained on in this process
  double seconds_ = 0;          // training time in this process
  int64_t last_printed_step_ = 0;
  Stopwatch since_print_;
};

}  // namespace engine::run
