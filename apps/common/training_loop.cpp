// The shared training loop: resume, checkpoint, Ctrl-C and NaN/Inf stops
// around the apps' step and end-of-epoch functions. The why of every line
// (above all the loader generator's offset) is in training_loop.h.
#include "apps/common/training_loop.h"

#include <filesystem>
#include <utility>

#include "apps/common/png.h"
#include "apps/common/report.h"
#include "core/error.h"

namespace engine::training {

TrainingLoopSetup command_line_setup(const std::string& program, const run::RunFolder& folder,
                                     const cli::CommonOptions& common, const cli::Command& command,
                                     const std::string& continue_command, Device device) {
  TrainingLoopSetup setup;
  setup.program = program;
  setup.run_folder = folder.path();
  setup.continue_command = continue_command;
  setup.resume_given = common.resume;
  setup.out_given = command.was_set("out");
  setup.loss_read_every = device.is_cpu() ? 1 : 50;
  setup.stop_after_steps = common.stop_after_steps;
  return setup;
}

run::RunFolder open_run_folder(const cli::CommonOptions& common, const cli::Command& command,
                               const std::string& default_path) {
  if (common.resume && !command.was_set("out"))
    throw cli::UsageError("flag '--resume': needs --out DIR, the run folder to continue");
  run::RunFolder folder(common.out.empty() ? default_path : common.out);
  if (common.resume && !folder.exists(ckpt::kTrainingCheckpointName))
    throw cli::UsageError("flag '--resume': the run folder '" + folder.path() + "' has no " +
                          ckpt::kTrainingCheckpointName + " to continue from");
  if (!common.resume && folder.exists(ckpt::kTrainingCheckpointName))
    throw cli::UsageError("flag '--out': the run folder '" + folder.path() +
                          "' already holds a run; continue it with --resume, or choose another --out");
  return folder;
}

TrainingLoop::TrainingLoop(TrainingLoopSetup setup, TrainingParts parts)
    : setup_(std::move(setup)),
      checkpoint_path_(in_run_folder(ckpt::kTrainingCheckpointName)),
      losses_csv_path_(in_run_folder("losses.csv")),
      parts_(parts),
      steps_per_epoch_(parts.loader.num_batches()),
      losses_(setup_.loss_read_every),
      loader_offset_at_epoch_start_(parts.loader.generator().offset()) {}

void TrainingLoop::resume() {
  const std::string& path = checkpoint_path_;
  ckpt::TrainingState state = ckpt::load_training_checkpoint(path);
  try {
    ckpt::check_same_settings(state.settings, setup_.settings, path);
  } catch (const Error& e) {
    throw cli::UsageError(e.what());  // a command-line mistake, found before any work
  }
  ckpt::check_state_fits(parts_.model, state.model, path, setup_.model_description);
  parts_.model.load_state_dict(state.model);
  parts_.optimizer.load_state_dict(state.optimizer);
  if (parts_.lr_schedule != nullptr) parts_.lr_schedule->set_last_epoch(state.scheduler_epoch);
  parts_.optimizer.set_lr(state.lr);
  ENGINE_CHECK(state.generators.count("loader") && state.generators.count("noise"), "training checkpoint '", path,
               "': the loader and noise generators are missing");
  loader_offset_at_epoch_start_ = state.generators.at("loader").offset();
  parts_.noise_gen = state.generators.at("noise");
  losses_.assign(state.losses);
  start_epoch_ = state.epoch;
  start_batch_ = state.batch;
  previous_train_seconds_ = state.train_seconds;
  resumed_ = true;
}

void TrainingLoop::begin() {
  run::clear_interrupt();  // a flag left over from an earlier in-process run
  run::install_interrupt_handlers();
  progress_.emplace(run::ProgressOptions{
      .total_steps = steps_per_epoch_ * setup_.epochs, .steps_per_epoch = steps_per_epoch_, .epochs = setup_.epochs});
  progress_->start_at(losses_.size());
}

double TrainingLoop::train_seconds() const {
  return previous_train_seconds_ + (progress_ ? progress_->train_seconds() : 0.0);
}

ckpt::TrainingState TrainingLoop::state_at(int64_t epoch, int64_t batch, uint64_t loader_offset) {
  losses_.flush();
  ckpt::TrainingState state;
  state.model = parts_.model.state_dict();
  state.optimizer = parts_.optimizer.state_dict();
  state.lr = parts_.optimizer.lr();
  if (parts_.lr_schedule != nullptr) state.scheduler_epoch = parts_.lr_schedule->last_epoch();
  state.epoch = epoch;
  state.batch = batch;
  state.step = losses_.size();
  state.train_seconds = train_seconds();
  Generator loader_at_epoch_start = parts_.loader.generator();
  loader_at_epoch_start.set_offset(loader_offset);
  state.generators.insert_or_assign("loader", loader_at_epoch_start);
  state.generators.insert_or_assign("noise", parts_.noise_gen);
  state.losses = losses_.values();
  state.settings = setup_.settings;
  return state;
}

std::string TrainingLoop::in_run_folder(const std::string& name) const {
  return (std::filesystem::path(setup_.run_folder) / name).string();
}

std::string TrainingLoop::continue_hint() const {
  return "\n  continue with: " + setup_.continue_command + (setup_.resume_given ? "" : " --resume") +
         (setup_.out_given ? "" : " --out " + setup_.run_folder);
}

void TrainingLoop::write_loss_files() {
  losses_.flush();
  report::write_losses_csv(losses_csv_path_, losses_.values(), steps_per_epoch_);
  image::Series series;
  for (size_t i = 0; i < losses_.values().size(); ++i) {
    series.x.push_back(static_cast<double>(i + 1));
    series.y.push_back(losses_.values()[i]);
  }
  image::write_line_plot_png(in_run_folder("loss.png"), {series},
                             {.width = 720, .height = 400, .log_y = true});
}

int TrainingLoop::stop_for_interrupt(int64_t epoch, int64_t batch) {
  ckpt::save_training_checkpoint(checkpoint_path_, state_at(epoch, batch, loader_offset_at_epoch_start_));
  report::write_losses_csv(losses_csv_path_, losses_.values(), steps_per_epoch_);
  progress_->note(setup_.program + ": interrupted at step " + std::to_string(losses_.size()) +
                  "; checkpoint saved to " + checkpoint_path_ + continue_hint());
  return cli::kExitInterrupted;
}

int TrainingLoop::stop_for_divergence(int64_t bad_step, int64_t epoch) {
  losses_.flush();
  progress_->note(setup_.program + ": the loss became " +
                  report::format_number(losses_.values()[static_cast<size_t>(bad_step)]) + " at step " +
                  std::to_string(bad_step + 1) + " (epoch " + std::to_string(epoch + 1) +
                  "); training stopped. The last good checkpoint (if any) is kept in " + setup_.run_folder +
                  "; try a smaller --lr.");
  report::write_losses_csv(losses_csv_path_, losses_.values(), steps_per_epoch_);
  return cli::kExitDiverged;
}

int TrainingLoop::run(const StepFunction& step, const EpochEndFunction& epoch_end) {
  ENGINE_CHECK(progress_.has_value(), "TrainingLoop::run: call begin() first");
  data::DataLoader& loader = parts_.loader;
  for (int64_t epoch = start_epoch_; epoch < setup_.epochs; ++epoch) {
    if (epoch == start_epoch_) loader.generator().set_offset(loader_offset_at_epoch_start_);
    loader_offset_at_epoch_start_ = loader.generator().offset();
    loader.start_epoch();  // draws this epoch's order from the loader's generator
    for (int64_t b = epoch == start_epoch_ ? start_batch_ : 0; b < steps_per_epoch_; ++b) {
      if (run::interrupt_requested()) return stop_for_interrupt(epoch, b);
      const run::Stopwatch step_time;
      const data::Batch batch = loader.batch(b);
      parts_.optimizer.zero_grad();
      const Tensor loss = step(batch);
      loss.backward();
      parts_.optimizer.step();
      losses_.push(loss);
      progress_->step_done(batch.size(), step_time.seconds(), losses_);
      if (const auto bad = losses_.poll_non_finite()) return stop_for_divergence(*bad, epoch);
      if (setup_.stop_after_steps > 0 && losses_.size() == setup_.stop_after_steps) run::request_interrupt();
    }
    // A GPU run reads its losses every few steps: check the epoch's last ones.
    if (const auto bad = losses_.first_non_finite()) return stop_for_divergence(*bad, epoch);

    // End of the epoch. The next epoch has not drawn its order yet: its start
    // offset is the current one.
    if (parts_.lr_schedule != nullptr) parts_.lr_schedule->step();
    ckpt::save_training_checkpoint(checkpoint_path_, state_at(epoch + 1, 0, loader.generator().offset()));
    write_loss_files();
    epoch_end(epoch);
    if (run::interrupt_requested()) {
      progress_->note(setup_.program + ": interrupted after epoch " + std::to_string(epoch + 1) +
                      "; checkpoint saved to " + checkpoint_path_ + continue_hint());
      return cli::kExitInterrupted;
    }
  }
  return cli::kExitOk;
}

}  // namespace engine::training
