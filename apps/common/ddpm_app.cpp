// ddpm: Part 2 of the diffusion assignment. A UNet learns to predict the
// noise eps in x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, given
// x_t, t / T and (class model) the digit; sampling then runs the learned
// reverse process from pure noise. The math is in models/ddpm.h and
// docs/ddpm.md; this file is the training loop, the figures and the report.
//
//   ddpm train  --model time|class   trains and writes a run folder (default command)
//   ddpm sample --model time|class --checkpoint FILE   draws samples from a checkpoint
//
// What `train` writes into the run folder:
//   loss.png, losses.csv          the training loss of every step
//   samples_epoch_<e>.png         samples after epochs 1, 5, 10, 15, 20 (and the last), same seed each time:
//                                 time model 40 samples (4 rows of 10); class model 4 of each digit,
//                                 one row per digit 0..9
//   denoising.gif                 the final model sampling that grid, from noise to the result
//   model.safetensors             the latest model state dict (loads into PyTorch), with the schedule as metadata
//   checkpoint.safetensors        the training checkpoint, after every epoch and on Ctrl-C (--resume)
//   metrics.json, report.html     the numbers, and all of the above on one page
//
// Random streams (Philox generators keyed by the seed, one per purpose):
//   seed + 0   weight initialisation
//   seed + 1   the data loader's shuffles
//   seed + 2   the training draws: t, eps and the class dropout, per batch fetched
//   seed + 3   the sample grids (restarted for each grid, so all epochs' grids start from the same x_T)
#include "apps/common/ddpm_app.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <sstream>

#include "apps/common/checkpoint.h"
#include "apps/common/cli.h"
#include "apps/common/gif.h"
#include "apps/common/idx.h"
#include "apps/common/loader.h"
#include "apps/common/npy.h"
#include "apps/common/png.h"
#include "apps/common/report.h"
#include "apps/common/run.h"
#include "apps/common/training_loop.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "layers/optim.h"
#include "models/ddpm.h"
#include "models/unet.h"

namespace engine::ddpm_app {
namespace {

constexpr const char* kProgram = "ddpm";
constexpr int64_t kTimeGridSamples = 40;  // the time model's grid: 4 rows of 10
constexpr int64_t kTimeGridColumns = 10;
constexpr int64_t kClassGridPerDigit = 4;  // the class model's grid: 4 of each digit, one row per digit

// --- Settings ---------------------------------------------------------------------------------

struct TrainSettings {
  cli::CommonOptions common;
  std::string model = "class";
  int64_t batch_size = 128;
  int64_t epochs = 20;
  int64_t hidden = 64;
  double lr = 1e-3;
  int64_t train_images = 0;  // 0: all
  int64_t num_steps = DdpmSchedule::kDefaultSteps;
  double beta_start = DdpmSchedule::kDefaultBetaStart;
  double beta_end = DdpmSchedule::kDefaultBetaEnd;
  double p_uncond = 0.1;
  double guidance = 5.0;
  std::string sample_epochs = "1,5,10,15,20";
  int64_t gif_frames = 40;
};

// The --quick preset, applied to every flag the user did not set.
constexpr int64_t kQuickHidden = 16;
constexpr int64_t kQuickTrainImages = 20000;
constexpr int64_t kQuickEpochs = 3;
constexpr int64_t kQuickBatchSize = 32;
constexpr const char* kQuickSampleEpochs = "1,3";

std::string quick_description() {
  std::ostringstream text;
  text << "the small CPU preset: --hidden " << kQuickHidden << " --train-images " << kQuickTrainImages
       << " --epochs " << kQuickEpochs << " --batch-size " << kQuickBatchSize << " --sample-epochs "
       << kQuickSampleEpochs
       << " (flags you give explicitly win). It trades model width (D = 16 instead of 64, ~16x fewer parameters), "
          "data (the first 20000 training images, a third) and training length (3 epochs, 60000 images seen instead "
          "of 1.2 million; batches of 32 so that they still make 1875 optimiser steps) for time; the diffusion "
          "itself is unchanged (T = 300, the same betas, every sampling step), and so is the learning-rate "
          "schedule (lr 1e-3 decayed to 1e-4 over the epochs)";
  return text.str();
}

std::map<std::string, std::string> training_settings(const TrainSettings& s) {
  return {{"model", s.model},
          {"batch_size", std::to_string(s.batch_size)},
          {"epochs", std::to_string(s.epochs)},
          {"hidden", std::to_string(s.hidden)},
          {"lr", ckpt::double_text(s.lr)},
          {"train_images", std::to_string(s.train_images)},
          {"num_steps", std::to_string(s.num_steps)},
          {"beta_start", ckpt::double_text(s.beta_start)},
          {"beta_end", ckpt::double_text(s.beta_end)},
          {"p_uncond", ckpt::double_text(s.p_uncond)},
          {"seed", std::to_string(s.common.seed)},
          {"dataset", s.common.dataset}};
}

UNetConditioning conditioning_of(const std::string& model) {
  return model == "time" ? UNetConditioning::time : UNetConditioning::time_and_class;
}

std::string model_description(const std::string& model, int64_t hidden) {
  return std::string(model == "time" ? "the time-conditioned" : "the class-conditioned") + " UNet with D=" +
         std::to_string(hidden) + " (ddpm --model " + model + ")";
}

// "1,5,10" -> {1, 5, 10}; every entry a whole number in [lo, hi]. `flag` names the flag in errors.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag, int64_t lo, int64_t hi,
                                    const std::string& what) {
  std::vector<int64_t> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    size_t used = 0;
    long long value = 0;
    bool ok = !item.empty();
    try {
      if (ok) value = std::stoll(item, &used);
    } catch (const std::exception&) {
      ok = false;
    }
    if (!ok || used != item.size() || value < lo || value > hi)
      throw cli::UsageError("flag '--" + flag + "': '" + item + "' is not " + what + " (" + std::to_string(lo) +
                            ".." + std::to_string(hi) + "); expected a comma-separated list such as '" +
                            std::to_string(lo) + "," + std::to_string(std::min(hi, lo + 1)) + "'");
    values.push_back(value);
  }
  if (values.empty())
    throw cli::UsageError("flag '--" + flag + "': expected a comma-separated list of " + what + ", got '" + text + "'");
  return values;
}

// --- Data ------------------------------------------------------------------------------------------

data::DatasetName dataset_name(const std::string& name) {
  return name == "fashion" ? data::DatasetName::fashion : data::DatasetName::mnist;
}

// The first `count` items of a dataset (all of them when count is 0 or >= its size).
data::Dataset take_first(const data::Dataset& dataset, int64_t count) {
  if (count <= 0 || count >= dataset.size()) return dataset;
  const int64_t item = dataset.images.numel() / dataset.size();
  Shape shape = dataset.images.shape();
  shape[0] = count;
  const float* first = dataset.images.data<float>();
  data::Dataset subset;
  subset.images = Tensor::from_vector(std::vector<float>(first, first + count * item), shape);
  subset.labels.assign(dataset.labels.begin(), dataset.labels.begin() + count);
  subset.description = dataset.description + ", first " + std::to_string(count) + " images";
  return subset;
}

// --- Sampling to files -------------------------------------------------------------------------------

// What a grid shows: the labels of its samples (class model; empty for the
// time model) and how many per row.
struct GridLayout {
  int64_t count = 0;
  std::vector<int64_t> labels;
  int64_t columns = 10;
};

// Class model: `per_digit` samples of each digit in `digits`, one row per digit.
GridLayout class_grid(const std::vector<int64_t>& digits, int64_t per_digit) {
  GridLayout layout;
  for (int64_t digit : digits)
    for (int64_t i = 0; i < per_digit; ++i) layout.labels.push_back(digit);
  layout.count = static_cast<int64_t>(layout.labels.size());
  layout.columns = per_digit;
  return layout;
}

GridLayout time_grid(int64_t count) { return {count, {}, std::min<int64_t>(kTimeGridColumns, count)}; }

image::GridOptions grid_options(int64_t columns) { return {.columns = columns, .padding = 2, .pad_value = 0.5f}; }

// Collects about `frames` evenly spaced frames of a sampling run (the first
// is x_T, the last always the final image) for a denoising GIF.
class FrameRecorder {
 public:
  FrameRecorder(int64_t num_steps, int64_t frames, int64_t columns)
      : num_steps_(num_steps),
        stride_(std::max<int64_t>(1, (num_steps + frames - 2) / std::max<int64_t>(1, frames - 1))),
        columns_(columns) {}

  // The sampler's on_step callback: step = T for x_T, then t - 1 after each
  // step. Keeps x_T, every stride-th step and the final x_0 (step 0).
  void operator()(int64_t step, const Tensor& x) {
    if (step == num_steps_ || step % stride_ == 0) images_.push_back(image::make_grid(x, grid_options(columns_)));
  }
  // Each frame 8/100 s; the final image held for 3 s.
  void write(const std::string& path) const {
    std::vector<int> delays(images_.size(), 8);
    if (!delays.empty()) delays.back() = 300;
    image::write_gif(path, images_, delays);
  }
  size_t size() const { return images_.size(); }

 private:
  int64_t num_steps_;
  int64_t stride_;
  int64_t columns_;
  std::vector<image::Image> images_;
};

Tensor sample_grid(UNet& model, const DdpmSchedule& schedule, const GridLayout& layout, double guidance,
                   uint64_t seed, FrameRecorder* frames) {
  DdpmSampleOptions options;
  options.num_samples = layout.count;
  options.labels = layout.labels;
  options.guidance_scale = guidance;
  if (frames != nullptr) options.on_step = [frames](int64_t step, const Tensor& x) { (*frames)(step, x); };
  Generator gen(seed);
  return ddpm_sample(model, schedule, options, gen);
}

// The model's state dict with the schedule as metadata, so `ddpm sample`
// rebuilds the same schedule; PyTorch's safetensors.torch.load_file ignores it.
void save_model(const std::string& path, const UNet& model, const TrainSettings& s) {
  save_safetensors(path, model.state_dict(),
                   {{"ddpm.model", s.model},
                    {"ddpm.num_steps", std::to_string(s.num_steps)},
                    {"ddpm.beta_start", ckpt::double_text(s.beta_start)},
                    {"ddpm.beta_end", ckpt::double_text(s.beta_end)}});
}

// --- The report ---------------------------------------------------------------------------------------

struct RunFacts : report::TrainingFacts {
  double sample_seconds = 0;  // the final grid (with the GIF frames)
  int64_t sample_images = 0;
  std::vector<int64_t> grid_epochs;  // epochs with a samples_epoch_<e>.png
};

void write_report(const run::RunFolder& folder, const TrainSettings& s, const RunFacts& facts,
                  const std::vector<float>& losses) {
  const bool is_class = s.model == "class";
  const std::vector<double> means = report::epoch_mean_losses(losses, facts.steps_per_epoch);

  json::Value metrics;
  json::Value settings;
  for (const auto& [name, value] : training_settings(s)) settings.set(name, value);
  settings.set("quick", s.common.quick);
  settings.set("guidance", s.guidance);
  metrics.set("settings", settings);
  report::set_run_metrics(metrics, facts, static_cast<int64_t>(losses.size()));
  metrics.set("sample_seconds", facts.sample_seconds);
  metrics.set("sample_images", facts.sample_images);
  metrics.set("epoch_mean_loss", json::Elements(means.begin(), means.end()));
  metrics.set("first_loss", losses.empty() ? 0.0 : static_cast<double>(losses.front()));
  metrics.set("last_loss", losses.empty() ? 0.0 : static_cast<double>(losses.back()));
  report::write_json(folder.file("metrics.json"), metrics);

  report::Html page(is_class ? "DDPM run: class-conditioned UNet with classifier-free guidance (Part 2)"
                             : "DDPM run: time-conditioned UNet (Part 2)");
  page.paragraph(std::string("A UNet trained to predict the noise eps in x_t = sqrt(alpha_bar_t) x0 + "
                             "sqrt(1 - alpha_bar_t) eps from x_t and t/T") +
                 (is_class ? " and the one-hot digit (dropped to zeros with probability p_uncond)" : "") +
                 ", then sampled by running the reverse process from pure noise. Command: " + facts.command_line);
  if (s.common.quick) page.paragraph("--quick preset: " + quick_description() + ".");
  report::KeyValues rows = {
      {"model", model_description(s.model, s.hidden)},
      {"parameters", std::to_string(facts.parameters)},
      {"diffusion", "T = " + std::to_string(s.num_steps) + " steps, betas linspace(" + ckpt::double_text(s.beta_start) +
                        ", " + ckpt::double_text(s.beta_end) + ") at t = 1..T, alpha_bar_0 = 1 (see docs/ddpm.md)"},
      {"batch size", std::to_string(s.batch_size)},
      {"epochs", std::to_string(s.epochs)},
      {"optimiser", "Adam, lr " + ckpt::double_text(s.lr) + ", ExponentialLR gamma 0.1^(1/" +
                        std::to_string(s.epochs) + ") after every epoch"},
      {"training data", facts.train_description},
      {"seed", std::to_string(s.common.seed)}};
  if (is_class) {
    rows.push_back({"p_uncond", ckpt::double_text(s.p_uncond)});
    rows.push_back({"guidance scale (samples)", ckpt::double_text(s.guidance)});
  }
  page.key_values("Settings", rows);
  page.key_values(
      "Run",
      {{"device", cli::device_description(facts.device, facts.threads)},
       {"steps", std::to_string(losses.size()) + " (" + std::to_string(facts.steps_per_epoch) + " per epoch)"},
       {"wall time (this session)", run::format_duration(facts.wall_seconds)},
       {"training time (all sessions)", run::format_duration(facts.train_seconds)},
       {"training speed (this session)", report::format_number(facts.images_per_second) + " images/s"},
       {"sampling the final grid", std::to_string(facts.sample_images) + " samples x " + std::to_string(s.num_steps) +
                                       " steps in " + run::format_duration(facts.sample_seconds)},
       {"resumed from a checkpoint", facts.resumed ? "yes" : "no"}});

  page.section("Training loss");
  page.figure("loss.png", "MSE between predicted and true noise, every training step (x: step, y: loss, log scale).");
  std::vector<std::vector<std::string>> loss_rows;
  for (size_t e = 0; e < means.size(); ++e)
    loss_rows.push_back({std::to_string(e + 1), report::format_number(means[e], 5)});
  page.table({"epoch", "mean loss"}, loss_rows);

  page.section("Samples during training");
  for (int64_t e : facts.grid_epochs) {
    const std::string name = "samples_epoch_" + std::to_string(e) + ".png";
    if (!folder.exists(name)) continue;
    page.figure(name, "After epoch " + std::to_string(e) + ": " +
                          (is_class ? "4 samples of each digit, rows 0 to 9 top to bottom, guidance scale " +
                                          ckpt::double_text(s.guidance)
                                    : std::to_string(kTimeGridSamples) + " samples") +
                          ". Same seed at every epoch (the same starting noise).");
  }
  page.section("The denoising process");
  if (folder.exists("denoising.gif"))
    page.figure("denoising.gif", "The final model sampling the grid above: from pure noise x_T (first frame) to x_0 "
                                 "(last frame, held), about " + std::to_string(s.gif_frames) + " frames.");
  page.paragraph("Files: losses.csv (every step's loss), metrics.json (these numbers), model.safetensors (the state "
                 "dict; loads into the PyTorch model), checkpoint.safetensors (for --resume).");
  page.write(folder.file("report.html"));
}

// --- train ----------------------------------------------------------------------------------------------

// command_line: the command as typed, for the report; continue_line: the
// same without --stop-after-steps, for the "continue with" hint.
int train(const TrainSettings& s, const cli::Command& command, const std::string& command_line,
          const std::string& continue_line) {
  const run::Stopwatch wall;
  // Everything that can be wrong with the settings, before any work.
  const DdpmSchedule schedule = [&] {
    try {
      return DdpmSchedule(s.num_steps, s.beta_start, s.beta_end);
    } catch (const Error& e) {
      throw cli::UsageError(std::string("flags '--num-steps', '--beta-start', '--beta-end': ") + e.what());
    }
  }();
  std::vector<int64_t> grid_epochs = parse_int_list(s.sample_epochs, "sample-epochs", 1, 1000000, "an epoch number");
  grid_epochs.erase(std::remove_if(grid_epochs.begin(), grid_epochs.end(), [&](int64_t e) { return e > s.epochs; }),
                    grid_epochs.end());
  if (std::find(grid_epochs.begin(), grid_epochs.end(), s.epochs) == grid_epochs.end()) grid_epochs.push_back(s.epochs);
  std::sort(grid_epochs.begin(), grid_epochs.end());
  const Device device = cli::setup_device(s.common);
  const run::RunFolder folder =
      training::open_run_folder(s.common, command, run::default_run_folder(std::string(kProgram) + "-" + s.model));

  const bool is_class = s.model == "class";
  const data::Dataset train_set =
      take_first(data::load_mnist(s.common.data_dir, data::Split::train, dataset_name(s.common.dataset)), s.train_images);

  // Model, optimiser, schedule, random streams.
  const uint64_t seed = static_cast<uint64_t>(s.common.seed);
  Generator init_gen(seed);
  UNet model(s.hidden, conditioning_of(s.model), init_gen);
  model.to(device);
  model.train();
  Adam optimizer(model.parameters(), s.lr);
  ExponentialLR lr_schedule(optimizer, std::pow(0.1, 1.0 / static_cast<double>(s.epochs)));
  data::DataLoader loader(train_set, {.batch_size = s.batch_size, .shuffle = true}, Generator(seed + 1));
  Generator noise_gen(seed + 2);
  const uint64_t grid_seed = seed + 3;
  const GridLayout layout = is_class ? class_grid({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, kClassGridPerDigit)
                                     : time_grid(kTimeGridSamples);

  // The loop: resume, checkpoints, Ctrl-C and NaN/Inf stops (training_loop.h).
  training::TrainingLoopSetup setup =
      training::command_line_setup(kProgram, folder, s.common, command, continue_line, device);
  setup.settings = training_settings(s);
  setup.model_description = model_description(s.model, s.hidden);
  setup.epochs = s.epochs;
  training::TrainingLoop loop(setup, {model, optimizer, &lr_schedule, loader, noise_gen});
  if (s.common.resume) loop.resume();
  run::LossHistory& losses = loop.losses();
  const int64_t steps_per_epoch = loop.steps_per_epoch();

  std::cerr << kProgram << ": training " << model_description(s.model, s.hidden) << ", " << model.parameter_count()
            << " parameters, on " << cli::device_description(device, cli::cpu_threads()) << "\n  "
            << train_set.description << ": " << steps_per_epoch << " steps of " << s.batch_size << " per epoch x "
            << s.epochs << " epochs, T " << s.num_steps << ", Adam lr " << s.lr << "\n  run folder: " << folder.path()
            << (s.common.resume ? "\n  resuming at epoch " + std::to_string(loop.start_epoch() + 1) + ", step " +
                                      std::to_string(losses.size())
                                : "")
            << std::endl;

  loop.begin();

  // One step: the noise is drawn when the batch is fetched (t, eps, class
  // dropout); the loss is the MSE between the predicted and the true noise.
  auto step = [&](const data::Batch& batch) {
    const DdpmTrainingBatch noised = make_ddpm_training_batch(
        schedule, batch.images.to(device), is_class ? batch.labels : std::vector<int64_t>{}, s.p_uncond, noise_gen);
    return mse_loss(model.forward(noised.x_t, noised.t_input, noised.class_input), noised.noise);
  };
  // End of an epoch (the LR has decayed and the checkpoint is written): the model, the figures.
  FrameRecorder frames(s.num_steps, s.gif_frames, layout.columns);
  double final_sample_seconds = 0;
  auto epoch_end = [&](int64_t epoch) {
    const std::string epoch_name = std::to_string(epoch + 1);
    save_model(folder.file("model.safetensors"), model, s);
    std::string wrote = "checkpoint";
    if (std::find(grid_epochs.begin(), grid_epochs.end(), epoch + 1) != grid_epochs.end()) {
      const bool last = epoch + 1 == s.epochs;
      const run::Stopwatch sampling;
      const Tensor grid = sample_grid(model, schedule, layout, s.guidance, grid_seed, last ? &frames : nullptr);
      image::write_grid_png(folder.file("samples_epoch_" + epoch_name + ".png"), grid, grid_options(layout.columns));
      if (last) {
        frames.write(folder.file("denoising.gif"));
        final_sample_seconds = sampling.seconds();
      }
      wrote += ", samples_epoch_" + epoch_name + ".png" + (last ? " and denoising.gif" : "") + " (sampled in " +
               run::format_duration(sampling.seconds()) + ")";
    }
    loop.progress().note("epoch " + epoch_name + "/" + std::to_string(s.epochs) + " done: mean loss " +
                         report::format_number(losses.mean(epoch * steps_per_epoch, losses.size()), 5) + ", lr now " +
                         report::format_number(optimizer.lr(), 4) + "; wrote " + wrote);
  };
  if (const int status = loop.run(step, epoch_end); status != cli::kExitOk) return status;

  losses.flush();
  RunFacts facts;
  facts.command_line = command_line;
  facts.device = device;
  facts.threads = cli::cpu_threads();
  facts.parameters = model.parameter_count();
  facts.train_description = train_set.description;
  facts.steps_per_epoch = steps_per_epoch;
  facts.wall_seconds = wall.seconds();
  facts.train_seconds = loop.train_seconds();
  facts.images_per_second = loop.progress().images_per_second();
  facts.sample_seconds = final_sample_seconds;
  facts.sample_images = layout.count;
  facts.grid_epochs = grid_epochs;
  facts.resumed = s.common.resume;
  write_report(folder, s, facts, losses.values());
  std::cerr << kProgram << ": done in " << run::format_duration(facts.wall_seconds) << " ("
            << report::format_number(facts.images_per_second) << " training images/s); open "
            << folder.file("report.html") << std::endl;
  return cli::kExitOk;
}

// --- sample --------------------------------------------------------------------------------------------

struct SampleSettings {
  cli::CommonOptions common;
  std::string model = "class";
  std::string checkpoint;
  int64_t hidden = 0;  // 0: read from the checkpoint
  std::string digits = "0,1,2,3,4,5,6,7,8,9";
  int64_t per_digit = 4;
  int64_t num_samples = 40;
  double guidance = 5.0;
  bool gif = false;
  int64_t gif_frames = 40;
};

// A metadata entry of the checkpoint: "ddpm.<name>" (model.safetensors) or
// "setting.<name>" (a training checkpoint); `fallback` when neither is there
// (e.g. a state dict saved from PyTorch).
std::string metadata_value(const std::map<std::string, std::string>& metadata, const std::string& name,
                           const std::string& fallback) {
  for (const std::string& key : {"ddpm." + name, "setting." + name}) {
    const auto found = metadata.find(key);
    if (found != metadata.end()) return found->second;
  }
  return fallback;
}

int sample(const SampleSettings& s, const cli::Command& command) {
  const bool is_class = s.model == "class";
  // Flags first.
  std::vector<int64_t> digits;
  if (is_class) {
    digits = parse_int_list(s.digits, "digits", 0, 9, "a digit");
    if (command.was_set("num-samples"))
      throw cli::UsageError("flag '--num-samples': the class model draws --per-digit samples of each of --digits");
  } else {
    for (const char* flag : {"digits", "per-digit", "guidance"})
      if (command.was_set(flag))
        throw cli::UsageError(std::string("flag '--") + flag +
                              "': only for --model class (the time-conditioned model takes no digit)");
  }
  const Device device = cli::setup_device(s.common);

  // The checkpoint: tensors, and the schedule it was trained with.
  const SafetensorsContents contents = load_safetensors(s.checkpoint);
  const NamedTensors state = ckpt::load_model_state(s.checkpoint);
  const std::string trained_as = metadata_value(contents.metadata, "model", "");
  int64_t hidden = s.hidden;
  if (hidden == 0) {
    hidden = 64;
    for (const auto& [key, tensor] : state)
      if (key == "inc.0.0.weight" && tensor.dim() == 4 && tensor.size(0) >= 1) hidden = tensor.size(0);
  }
  const int64_t num_steps = std::stoll(metadata_value(contents.metadata, "num_steps", std::to_string(DdpmSchedule::kDefaultSteps)));
  const double beta_start = ckpt::parse_double(
      metadata_value(contents.metadata, "beta_start", ckpt::double_text(DdpmSchedule::kDefaultBetaStart)), "beta_start");
  const double beta_end = ckpt::parse_double(
      metadata_value(contents.metadata, "beta_end", ckpt::double_text(DdpmSchedule::kDefaultBetaEnd)), "beta_end");
  const DdpmSchedule schedule(num_steps, beta_start, beta_end);

  Generator unused(0);
  UNet model(hidden, conditioning_of(s.model), unused);
  try {
    ckpt::check_state_fits(model, state, s.checkpoint, model_description(s.model, hidden));
  } catch (const Error& e) {
    // The message names the first key that does not fit and both shapes; the
    // metadata, when there is some, says what the checkpoint is.
    if (trained_as.empty() || trained_as == s.model) throw;
    throw Error(std::string(e.what()) + "\n  (the checkpoint's metadata says it holds the " + trained_as +
                " model: use --model " + trained_as + ")");
  }
  model.load_state_dict(state);
  model.to(device);

  const run::RunFolder folder(s.common.out.empty() ? "samples" : s.common.out);
  const GridLayout layout = is_class ? class_grid(digits, s.per_digit) : time_grid(s.num_samples);
  std::cerr << kProgram << ": sampling " << layout.count << " images from " << s.checkpoint << " ("
            << model_description(s.model, hidden) << ", T " << num_steps
            << (is_class ? ", guidance " + ckpt::double_text(s.guidance) : "") << ", seed " << s.common.seed << ") on "
            << device.str() << std::endl;
  const run::Stopwatch timer;
  FrameRecorder frames(num_steps, s.gif_frames, layout.columns);
  const Tensor samples = sample_grid(model, schedule, layout, s.guidance, static_cast<uint64_t>(s.common.seed),
                                     s.gif ? &frames : nullptr);
  image::write_grid_png(folder.file("samples.png"), samples, grid_options(layout.columns));
  npy::save(folder.file("samples.npy"), samples);
  std::string wrote = "samples.png, samples.npy";
  if (is_class) {
    npy::save(folder.file("labels.npy"), Tensor::from_vector_i64(layout.labels, {layout.count}));
    wrote += ", labels.npy";
  }
  if (s.gif) {
    frames.write(folder.file("denoising.gif"));
    wrote += ", denoising.gif";
  }
  std::cerr << kProgram << ": wrote " << wrote << " into " << folder.path() << " in "
            << run::format_duration(timer.seconds()) << std::endl;
  return cli::kExitOk;
}

}  // namespace

int main(const std::vector<std::string>& args) {
  const std::string command_line = cli::command_line(kProgram, args);
  const std::string continue_line = cli::continue_command_line(kProgram, args);
  return cli::run_main(kProgram, [&] {
    cli::Program program(kProgram,
                         "Part 2 of the diffusion assignment: a DDPM on MNIST with a time-conditioned or a "
                         "class-conditioned UNet (classifier-free guidance).");

    TrainSettings t;
    cli::Command& train_cmd = program.add_command(
        "train", "Train a DDPM and write a run folder: loss curve, sample grids, denoising GIF, checkpoints, "
                 "report.html.");
    train_cmd.choice("model", &t.model, {"time", "class"},
                     "time: UNet conditioned on t/T; class: also on the digit (classifier-free guidance)")
        .required();
    cli::add_device_flags(train_cmd, t.common);
    cli::add_out_flag(train_cmd, t.common, "runs/ddpm-<model>-YYYYMMDD-HHMMSS");
    cli::add_training_flags(train_cmd, t.common, quick_description());
    cli::add_data_flags(train_cmd, t.common);
    train_cmd.flag("batch-size", &t.batch_size, "images per optimiser step").at_least(1);
    train_cmd.flag("epochs", &t.epochs, "passes over the training images").at_least(1);
    train_cmd.flag("hidden", &t.hidden, "UNet hidden width D").at_least(1).value_name("D");
    train_cmd.flag("lr", &t.lr, "initial Adam learning rate; ExponentialLR decays it by 0.1^(1/epochs) after every "
                                "epoch (to lr/10 at the end)")
        .greater_than(0);
    train_cmd.flag("train-images", &t.train_images, "train on the first N training images only (0: all)")
        .at_least(0)
        .value_name("N");
    train_cmd.flag("num-steps", &t.num_steps, "diffusion steps T").at_least(1).at_most(100000).value_name("T");
    train_cmd.flag("beta-start", &t.beta_start, "beta_1, the noise variance of the first step").greater_than(0).at_most(1);
    train_cmd.flag("beta-end", &t.beta_end, "beta_T, the noise variance of the last step").greater_than(0).at_most(1);
    train_cmd.flag("p-uncond", &t.p_uncond, "class model: probability that a training example's class is dropped")
        .at_least(0)
        .at_most(1);
    train_cmd.flag("guidance", &t.guidance, "class model: classifier-free guidance scale gamma of the sample grids")
        .at_least(0)
        .at_most(DdpmSampleOptions::kMaxGuidanceScale);
    train_cmd.flag("sample-epochs", &t.sample_epochs,
                   "after which epochs to draw a sample grid (the last epoch always gets one, with the GIF)")
        .value_name("LIST");
    train_cmd.flag("gif-frames", &t.gif_frames, "about how many frames the denoising GIF has").at_least(2);
    cli::add_stop_after_steps_flag(train_cmd, t.common);
    train_cmd.set_epilog(
        "Defaults are the assignment's: batch 128, 20 epochs, D = 64, Adam lr 1e-3 with ExponentialLR "
        "(gamma = 0.1^(1/epochs)), T = 300, betas 1e-4..0.02, p_uncond 0.1, guidance 5, all 60000 training images. "
        "On a CPU that takes many hours: use --quick there (minutes), or a GPU.\n"
        "Ctrl-C (or SIGTERM) saves checkpoint.safetensors and exits with status 130; --resume --out DIR continues "
        "with the same losses as an uninterrupted run. A NaN/Inf loss stops with status 3. Bad flags: status 2.\n"
        "Examples:\n  ddpm train --model class --quick --device cpu --out runs/ddpm-class-quick\n"
        "  ddpm train --model time --device cuda --out runs/ddpm-time");

    SampleSettings a;
    cli::Command& sample_cmd = program.add_command(
        "sample", "Draw samples from a checkpoint: samples.png, samples.npy (float32 [N,1,28,28]), labels.npy (class "
                  "model), and with --gif denoising.gif.");
    sample_cmd.choice("model", &a.model, {"time", "class"}, "which UNet the checkpoint holds").required();
    sample_cmd.flag("checkpoint", &a.checkpoint,
                    "model.safetensors or checkpoint.safetensors of a run, or a PyTorch state dict saved with "
                    "safetensors.torch.save_file")
        .required()
        .value_name("FILE");
    cli::add_out_flag(sample_cmd, a.common, "samples");
    cli::add_device_flags(sample_cmd, a.common);
    sample_cmd.flag("hidden", &a.hidden, "UNet width D (0: read it from the checkpoint)").at_least(0).value_name("D");
    sample_cmd.flag("digits", &a.digits, "class model: the digits to draw, one grid row each").value_name("LIST");
    sample_cmd.flag("per-digit", &a.per_digit, "class model: samples of each digit").at_least(1).at_most(1000);
    sample_cmd.flag("num-samples", &a.num_samples, "time model: how many samples").at_least(1).at_most(100000);
    sample_cmd.flag("guidance", &a.guidance, "class model: classifier-free guidance scale gamma (1: conditional only)")
        .at_least(0)
        .at_most(DdpmSampleOptions::kMaxGuidanceScale);
    sample_cmd.flag("gif", &a.gif, "also write denoising.gif, the sampling from noise to the result");
    sample_cmd.flag("gif-frames", &a.gif_frames, "about how many frames the GIF has").at_least(2);
    sample_cmd.set_epilog(
        "The schedule (T, betas) is read from the checkpoint's metadata (the assignment's when absent, e.g. a PyTorch "
        "state dict). The same --seed gives the same samples.\nExamples:\n"
        "  ddpm sample --model class --checkpoint runs/ddpm-class/model.safetensors --digits 3,7 --per-digit 8 "
        "--guidance 5 --seed 1 --gif --out samples37\n"
        "  ddpm sample --model time --checkpoint runs/ddpm-time/model.safetensors --num-samples 64");

    program.set_default_command("train");
    std::string help_text;
    cli::Command* command = program.parse(args, &help_text);
    if (command == nullptr) {
      std::cout << help_text;
      return cli::kExitOk;
    }
    if (command == &sample_cmd) return sample(a, sample_cmd);

    if (t.common.quick) {  // the preset fills in what the user left unset
      if (!train_cmd.was_set("hidden")) t.hidden = kQuickHidden;
      if (!train_cmd.was_set("train-images")) t.train_images = kQuickTrainImages;
      if (!train_cmd.was_set("epochs")) t.epochs = kQuickEpochs;
      if (!train_cmd.was_set("batch-size")) t.batch_size = kQuickBatchSize;
      if (!train_cmd.was_set("sample-epochs")) t.sample_epochs = kQuickSampleEpochs;
    }
    return train(t, train_cmd, command_line, continue_line);
  });
}

}  // namespace engine::ddpm_app
