// The training loop the apps share: epochs of mini-batch steps, a training
// checkpoint that makes a run resumable bit for bit, Ctrl-C, and the
// NaN/Inf stop. The denoiser (Part 1) and the DDPM (Part 2) differ only in
// how one step computes its loss and in what they write after an epoch; both
// hand exactly that to a TrainingLoop as two functions.
//
// What one step does (the loop's part around the app's step function):
//
//   optimizer.zero_grad()
//   loss = step(batch)          the app: draw the noise, forward, the loss (a scalar tensor)
//   loss.backward(); optimizer.step()
//   losses.push(loss)           recorded; a NaN/Inf stops the run (exit 3)
//
// What an epoch does:
//
//   loader.start_epoch()        draws the epoch's shuffle from the loader's generator
//   steps b = 0 .. steps_per_epoch - 1 (from start_batch in the first, resumed, epoch)
//   lr_schedule.step()          when there is one (DDPM's ExponentialLR)
//   checkpoint.safetensors, losses.csv, loss.png
//   epoch_end(epoch)            the app: figures, model files, its progress note
//
// Resuming bit for bit. A run interrupted at a step boundary continues with
// exactly the numbers an uninterrupted run would have seen, because the
// checkpoint (ckpt::TrainingState) holds everything the future depends on:
// the model (with BatchNorm's running statistics), Adam's moments and step
// counts, the learning rate and the scheduler's epoch, the noise generator,
// the losses so far, where to continue (epoch, batch) and the loader's
// generator. The loader's generator needs care: its shuffle for epoch e is
// drawn by start_epoch() at the start of the epoch, so the checkpoint stores
// the generator's offset from BEFORE that draw; a resume sets it back, draws
// the same order again and skips the batches already done. At the end of an
// epoch the next epoch has not drawn its order yet, so there the CURRENT
// offset is the right one (saving the earlier one would repeat the finished
// epoch's order: a bug the apps once had).
//
// Typical use (see apps/common/denoiser_app.cpp):
//
//   const run::RunFolder folder = open_run_folder(options, command, run::default_run_folder("denoiser"));
//   TrainingLoop loop(setup, {model, optimizer, nullptr, loader, noise_gen});
//   if (resume) loop.resume();           // before any message that names the start step
//   loop.begin();                        // Ctrl-C handlers, the progress line
//   const int status = loop.run(step, epoch_end);
//   if (status != cli::kExitOk) return status;   // interrupted (130) or diverged (3)
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "apps/common/checkpoint.h"
#include "apps/common/cli.h"
#include "apps/common/loader.h"
#include "apps/common/run.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "layers/module.h"
#include "layers/optim.h"

namespace engine::training {

// The run folder of a training command, checked against --resume before
// any work (each mistake is a cli::UsageError):
//   --resume needs --out (the folder to continue), and that folder must hold
//   checkpoint.safetensors; without --resume the folder must not hold one (a
//   new run would overwrite the old one's files).
// default_path: the folder when --out is not given (run::default_run_folder).
run::RunFolder open_run_folder(const cli::CommonOptions& common, const cli::Command& command,
                               const std::string& default_path);

// What the loop needs to know besides the objects it drives.
struct TrainingLoopSetup {
  std::string program;     // the app's name, the first word of its messages ("denoiser")
  std::string run_folder;  // where checkpoint.safetensors, losses.csv and loss.png go
  // The settings that define the computation (e.g. "sigma" -> "0.5"): saved in
  // the checkpoint, and a resume with different ones is refused.
  std::map<std::string, std::string> settings;
  // What the model is, for the error when a checkpoint's tensors do not fit ("this UNet").
  std::string model_description;
  int64_t epochs = 1;
  // The command that continues an interrupted run, for the "continue with:"
  // hint: the command as typed (less flags that must not repeat, such as
  // --stop-after-steps); " --resume" and " --out DIR" are added when missing.
  std::string continue_command;
  bool resume_given = false;  // the command has --resume
  bool out_given = false;     // the command has --out
  // How many losses may stay on the device before they are read (see
  // run::LossHistory): 1 on the CPU, ~50 on a GPU.
  int64_t loss_read_every = 1;
  // Acts as if Ctrl-C were pressed once this many steps (over the whole run)
  // are done, to test --resume; 0: never.
  int64_t stop_after_steps = 0;
};

// The fields of a setup that every training command fills the same way,
// from its command line and device: program, run_folder, continue_command,
// resume_given, out_given, stop_after_steps, and loss_read_every (1 on the
// CPU, 50 on a GPU). The app adds settings, model_description and epochs.
TrainingLoopSetup command_line_setup(const std::string& program, const run::RunFolder& folder,
                                     const cli::CommonOptions& common, const cli::Command& command,
                                     const std::string& continue_command, Device device);

// The objects the loop drives; the app owns them and they must outlive the loop.
struct TrainingParts {
  Module& model;
  Adam& optimizer;
  ExponentialLR* lr_schedule;  // stepped after every epoch; nullptr: a constant learning rate
  data::DataLoader& loader;    // shuffling, with its own generator
  Generator& noise_gen;        // the app's per-step random draws (saved as "noise")
};

class TrainingLoop {
 public:
  // The app's step: given the batch just fetched, draw what the step needs
  // and return the loss, a scalar tensor with a graph back to the model's
  // parameters (the loop runs backward and the optimizer step).
  using StepFunction = std::function<Tensor(const data::Batch& batch)>;
  // The app's end of epoch `epoch` (0-based), after the checkpoint and
  // the loss files were written: figures, model files, its "epoch done" note.
  using EpochEndFunction = std::function<void(int64_t epoch)>;

  TrainingLoop(TrainingLoopSetup setup, TrainingParts parts);

  // Continues from the checkpoint: checks the settings (a difference is a
  // cli::UsageError, a command-line mistake) and that the model's tensors fit,
  // then restores the model, the optimizer, the learning rate (and the
  // scheduler's epoch), the generators, the losses and where to start.
  void resume();

  // From here on Ctrl-C (or SIGTERM) stops at the next step boundary with a
  // checkpoint; starts the progress line at the current step.
  void begin();

  // Runs the remaining epochs. Returns cli::kExitOk when all are done,
  // cli::kExitInterrupted after saving a checkpoint on Ctrl-C (or
  // run::request_interrupt()), cli::kExitDiverged when a loss is NaN/Inf
  // (no checkpoint of the bad state is written). begin() must come first.
  int run(const StepFunction& step, const EpochEndFunction& epoch_end);

  // Where the run starts: 0 and 0 for a new run, the checkpoint's after resume().
  int64_t start_epoch() const { return start_epoch_; }
  int64_t start_batch() const { return start_batch_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  bool resumed() const { return resumed_; }

  // Every step's loss, including those of earlier sessions.
  run::LossHistory& losses() { return losses_; }
  // The progress line (notes go through it so they do not tear it); after begin().
  run::Progress& progress() { return *progress_; }
  // Seconds spent in training steps over all sessions of the run.
  double train_seconds() const;

  // Writes every loss so far to losses.csv (step, epoch, loss) and plots
  // them into loss.png (x: step, y: loss, log scale).
  void write_loss_files();

 private:
  // The state at a step boundary: about to run batch `batch` of epoch
  // `epoch`, whose order was drawn from the loader generator at `loader_offset`.
  ckpt::TrainingState state_at(int64_t epoch, int64_t batch, uint64_t loader_offset);
  int stop_for_interrupt(int64_t epoch, int64_t batch);
  int stop_for_divergence(int64_t bad_step, int64_t epoch);
  std::string continue_hint() const;
  std::string in_run_folder(const std::string& name) const;  // run_folder/name

  TrainingLoopSetup setup_;
  std::string checkpoint_path_;
  std::string losses_csv_path_;
  TrainingParts parts_;
  int64_t steps_per_epoch_;
  run::LossHistory losses_;
  std::optional<run::Progress> progress_;
  int64_t start_epoch_ = 0;
  int64_t start_batch_ = 0;
  double previous_train_seconds_ = 0;  // earlier sessions of a resumed run
  bool resumed_ = false;
  // The loader generator's offset before the current epoch's start_epoch()
  // (at first: the checkpoint's, where the first epoch will draw from).
  uint64_t loader_offset_at_epoch_start_;
};

}  // namespace engine::training
