// The denoiser app: training loop, evaluation, figures, report, and `apply`.
// What it computes and writes is described in denoiser_app.h; how to run it
// and what the figures show in docs/denoiser.md.
//
// Random streams: every random number of a run comes from Philox generators
// keyed by the seed, one per purpose, so that each purpose sees the same
// numbers whatever the others do:
//   seed + 0   weight initialisation
//   seed + 1   the data loader's shuffles
//   seed + 2   the training noise eps, drawn fresh for every batch fetched
//   seed + 3   evaluation and figures (restarted at each use: every figure
//              and every MSE uses the same noise, epoch after epoch)
#include "apps/common/denoiser_app.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "apps/common/checkpoint.h"
#include "apps/common/cli.h"
#include "apps/common/idx.h"
#include "apps/common/loader.h"
#include "apps/common/png.h"
#include "apps/common/report.h"
#include "apps/common/run.h"
#include "apps/common/training_loop.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"
#include "layers/optim.h"
#include "models/unet.h"

namespace fs = std::filesystem;

namespace engine::denoiser_app {

namespace {

constexpr const char* kProgram = "denoiser";
// The noise levels of the assignment's figures and of the test-set MSE table.
const std::vector<double> kFigureSigmas = {0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0};

// --- Settings ------------------------------------------------------------------------------------

struct TrainSettings {
  cli::CommonOptions common;
  double sigma = 0.5;
  int64_t batch_size = 256;
  int64_t epochs = 5;
  double lr = 1e-4;
  int64_t hidden = 128;
  int64_t train_images = 0;  // 0: the whole training set
  int64_t eval_images = 0;   // 0: the whole test set
};

// The --quick preset, applied to every flag the user did not set.
constexpr int64_t kQuickHidden = 16;
constexpr int64_t kQuickTrainImages = 6000;
constexpr int64_t kQuickEpochs = 2;
constexpr int64_t kQuickBatchSize = 64;
constexpr double kQuickLr = 1e-3;
constexpr int64_t kQuickEvalImages = 1000;

std::string quick_description() {
  const int64_t quick_steps = (kQuickTrainImages + kQuickBatchSize - 1) / kQuickBatchSize;
  std::ostringstream text;
  text << "the small CPU preset (a few minutes on 2 cores): --hidden " << kQuickHidden << " --train-images "
       << kQuickTrainImages << " --epochs " << kQuickEpochs << " --batch-size " << kQuickBatchSize << " --lr "
       << kQuickLr << " --eval-images " << kQuickEvalImages
       << " (flags you give explicitly win). It trades model width (D = " << kQuickHidden
       << " instead of 128: ~" << (128 / kQuickHidden) * (128 / kQuickHidden)
       << "x fewer parameters and FLOPs), data (the first " << kQuickTrainImages
       << " of the 60000 training images), training length (" << kQuickEpochs << " epochs of " << quick_steps
       << " steps instead of 5 of 235) and the size of the test-MSE evaluation (" << kQuickEvalImages
       << " of the 10000 test images) for time; a 10x larger learning rate makes up for the fewer steps";
  return text.str();
}

// The settings that define the training computation: a resume must match them.
std::map<std::string, std::string> training_settings(const TrainSettings& s) {
  return {{"sigma", ckpt::double_text(s.sigma)},
          {"batch_size", std::to_string(s.batch_size)},
          {"epochs", std::to_string(s.epochs)},
          {"lr", ckpt::double_text(s.lr)},
          {"hidden", std::to_string(s.hidden)},
          {"train_images", std::to_string(s.train_images)},
          {"seed", std::to_string(s.common.seed)},
          {"dataset", s.common.dataset}};
}

// --- Data --------------------------------------------------------------------------------------------

data::DatasetName dataset_name(const std::string& name) {
  return name == "fashion" ? data::DatasetName::fashion : data::DatasetName::mnist;
}

// The first `count` items of a dataset (all of them when count is 0 or >= its size).
data::Dataset take_first(const data::Dataset& dataset, int64_t count) {
  if (count <= 0 || count >= dataset.size()) return dataset;
  const int64_t item = dataset.images.numel() / dataset.size();
  data::Dataset subset;
  Shape shape = dataset.images.shape();
  shape[0] = count;
  subset.images = Tensor::empty(shape);  // the dataset lives on the host
  std::copy_n(dataset.images.data<float>(), count * item, subset.images.data<float>());
  subset.labels.assign(dataset.labels.begin(), dataset.labels.begin() + count);
  subset.description = dataset.description + ", first " + std::to_string(count) + " images";
  return subset;
}

// Images [rows, 1, 28, 28] of the given dataset indices.
Tensor gather(const data::Dataset& dataset, const std::vector<int64_t>& indices) {
  const int64_t item = dataset.images.numel() / dataset.size();
  Tensor out = Tensor::empty({static_cast<int64_t>(indices.size()), 1, 28, 28});
  const float* source = dataset.images.data<float>();
  float* destination = out.data<float>();
  for (size_t i = 0; i < indices.size(); ++i)
    std::copy_n(source + indices[i] * item, item, destination + static_cast<int64_t>(i) * item);
  return out;
}

// The digits shown in every figure: the first test image of each class 0..9.
std::vector<int64_t> figure_indices(const data::Dataset& test) {
  std::vector<int64_t> indices;
  for (int64_t label = 0; label < 10; ++label)
    for (int64_t i = 0; i < test.size(); ++i)
      if (test.labels[static_cast<size_t>(i)] == label) {
        indices.push_back(i);
        break;
      }
  return indices;
}

// --- The model at work ---------------------------------------------------------------------------

// The denoiser's output for x [N, 1, 28, 28] (host), in eval mode, in chunks
// of `chunk` images; returns a host tensor.
Tensor denoise(UNet& model, const Tensor& x, Device device, int64_t chunk) {
  autograd::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();  // BatchNorm uses its running statistics
  const int64_t n = x.size(0), item = x.numel() / n;
  const std::vector<float> values = x.to_vector();
  std::vector<float> result(values.size());
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t count = std::min(chunk, n - first);
    const Tensor part = Tensor::from_vector(
        std::vector<float>(values.begin() + first * item, values.begin() + (first + count) * item),
        {count, 1, 28, 28}, device);
    const std::vector<float> y = model.forward(part).to_vector();
    std::copy(y.begin(), y.end(), result.begin() + first * item);
  }
  model.train(was_training);
  return Tensor::from_vector(result, x.shape());
}

// x + sigma * eps, eps drawn from `gen` (host tensors).
Tensor add_noise(const Tensor& x, double sigma, Generator& gen) {
  return add(x, scale(randn(x.shape(), gen), static_cast<float>(sigma)));
}

// Stacks image batches [n_i, 1, 28, 28] into one, in order (rows of a grid).
Tensor stack_rows(const std::vector<Tensor>& rows) { return concat(rows, 0); }

struct SigmaMse {
  double sigma, noisy, denoised;
};

// Test-set MSE per sigma: mean over images and pixels of (D(x + sigma eps) - x)^2,
// and of the noisy input (x + sigma eps - x)^2 = sigma^2 eps^2 for comparison.
// The same eps for every sigma (the generator restarts), so the rows differ
// only by sigma.
std::vector<SigmaMse> test_mse(UNet& model, const data::Dataset& eval_set, Device device, int64_t chunk,
                               uint64_t eval_seed) {
  std::vector<SigmaMse> rows;
  for (double sigma : kFigureSigmas) {
    Generator gen(eval_seed);
    double noisy_sum = 0, denoised_sum = 0;
    for (int64_t first = 0; first < eval_set.size(); first += chunk) {
      const int64_t count = std::min(chunk, eval_set.size() - first);
      std::vector<int64_t> indices(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) indices[static_cast<size_t>(i)] = first + i;
      const Tensor x = gather(eval_set, indices);
      const Tensor z = add_noise(x, sigma, gen);
      const Tensor y = denoise(model, z, device, chunk);
      autograd::NoGradGuard no_grad;
      noisy_sum += static_cast<double>(mse_loss(z, x).item()) * static_cast<double>(x.numel());
      denoised_sum += static_cast<double>(mse_loss(y, x).item()) * static_cast<double>(x.numel());
    }
    const double pixels = static_cast<double>(eval_set.images.numel());
    rows.push_back({sigma, noisy_sum / pixels, denoised_sum / pixels});
  }
  return rows;
}

// --- Figures -----------------------------------------------------------------------------------------

const image::GridOptions kFigureGrid{.columns = 10, .padding = 2, .pad_value = 0.5f};

void write_noising_figure(const std::string& path, const Tensor& digits, uint64_t eval_seed) {
  std::vector<Tensor> rows;
  for (double sigma : kFigureSigmas) {
    Generator gen(eval_seed);
    rows.push_back(add_noise(digits, sigma, gen));
  }
  image::write_grid_png(path, stack_rows(rows), kFigureGrid);
}

void write_denoised_figure(const std::string& path, UNet& model, const Tensor& digits, double sigma, Device device,
                           uint64_t eval_seed) {
  Generator gen(eval_seed);
  const Tensor noisy = add_noise(digits, sigma, gen);
  const Tensor denoised = denoise(model, noisy, device, digits.size(0));
  image::write_grid_png(path, stack_rows({digits, noisy, denoised}), kFigureGrid);
}

void write_ood_figure(const std::string& path, UNet& model, const Tensor& digits, Device device, uint64_t eval_seed) {
  std::vector<Tensor> rows;
  for (double sigma : kFigureSigmas) {
    Generator gen(eval_seed);
    const Tensor noisy = add_noise(digits, sigma, gen);
    rows.push_back(noisy);
    rows.push_back(denoise(model, noisy, device, digits.size(0)));
  }
  image::write_grid_png(path, stack_rows(rows), kFigureGrid);
}

// --- The report ----------------------------------------------------------------------------------------

struct RunFacts : report::TrainingFacts {
  std::string test_description;
  int64_t eval_images = 0;
};

std::string sigma_text(double sigma) { return report::format_number(sigma, 3); }

void write_report(const run::RunFolder& folder, const TrainSettings& s, const RunFacts& facts,
                  const std::vector<float>& losses, const std::vector<SigmaMse>& mse) {
  // metrics.json
  json::Value metrics;
  json::Value settings;
  settings.set("sigma", s.sigma);
  settings.set("batch_size", s.batch_size);
  settings.set("epochs", s.epochs);
  settings.set("lr", s.lr);
  settings.set("hidden", s.hidden);
  settings.set("train_images", s.train_images);
  settings.set("seed", s.common.seed);
  settings.set("dataset", s.common.dataset);
  settings.set("quick", s.common.quick);
  settings.set("eval_images", facts.eval_images);
  metrics.set("settings", settings);
  report::set_run_metrics(metrics, facts, static_cast<int64_t>(losses.size()));
  const std::vector<double> means = report::epoch_mean_losses(losses, facts.steps_per_epoch);
  metrics.set("epoch_mean_loss", json::Elements(means.begin(), means.end()));
  json::Value mse_rows = json::Elements{};
  for (const SigmaMse& row : mse) {
    json::Value entry;
    entry.set("sigma", row.sigma);
    entry.set("noisy_mse", row.noisy);
    entry.set("denoised_mse", row.denoised);
    mse_rows.push_back(entry);
  }
  metrics.set("test_mse", mse_rows);
  report::write_json(folder.file("metrics.json"), metrics);

  // report.html
  report::Html page("Denoiser run: one-step denoising UNet (Part 1)");
  page.paragraph("A UNet trained to map a noisy digit z = x + sigma * eps to the clean digit x with an L2 loss. "
                 "Command: " + facts.command_line);
  if (s.common.quick) page.paragraph("--quick preset: " + quick_description() + ".");
  page.key_values("Settings", {{"sigma (training noise)", sigma_text(s.sigma)},
                               {"batch size", std::to_string(s.batch_size)},
                               {"epochs", std::to_string(s.epochs)},
                               {"optimiser", "Adam, lr " + ckpt::double_text(s.lr) + ", betas (0.9, 0.999), eps 1e-8"},
                               {"UNet hidden width D", std::to_string(s.hidden)},
                               {"parameters", std::to_string(facts.parameters)},
                               {"training data", facts.train_description},
                               {"evaluation data", facts.test_description + ", first " +
                                                       std::to_string(facts.eval_images) + " images"},
                               {"seed", std::to_string(s.common.seed)}});
  page.key_values("Run", {{"device", cli::device_description(facts.device, facts.threads)},
                          {"steps", std::to_string(losses.size()) + " (" + std::to_string(facts.steps_per_epoch) + " per epoch)"},
                          {"training time (all sessions)", run::format_duration(facts.train_seconds)},
                          {"wall time (this session, with evaluation and figures)", run::format_duration(facts.wall_seconds)},
                          {"training speed (this session)", report::format_number(facts.images_per_second) + " images/s"},
                          {"resumed from a checkpoint", facts.resumed ? "yes" : "no"}});

  page.section("The noising process");
  page.figure("noising.png", "Test digits (columns) noised as z = x + sigma * eps, rows sigma = 0, 0.2, 0.4, 0.5, "
                             "0.6, 0.8, 1.0 from top to bottom (pixels clipped to [0, 1] for display).");
  page.section("Training loss");
  page.figure("loss.png", "L2 loss of every training step (x: step, y: loss, log scale).");
  page.section("Denoising the test digits");
  for (int64_t e = 1; e <= s.epochs; ++e) {
    if (e != 1 && e != s.epochs) continue;
    const std::string name = "denoised_epoch_" + std::to_string(e) + ".png";
    if (folder.exists(name))
      page.figure(name, "After epoch " + std::to_string(e) + ": rows clean x, noisy z (sigma = " + sigma_text(s.sigma) +
                            "), denoised UNet(z).");
  }
  page.section("Out of distribution: other noise levels");
  page.figure("ood.png", "The same digits, two rows per sigma = 0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0 (top to bottom): "
                         "the noisy input, then its denoised output. The model was trained at sigma = " +
                             sigma_text(s.sigma) + " only.");
  std::vector<std::vector<std::string>> rows;
  for (const SigmaMse& row : mse)
    rows.push_back({sigma_text(row.sigma), report::format_number(row.noisy), report::format_number(row.denoised),
                    row.noisy > 0 && row.denoised > 0 ? report::format_number(row.noisy / row.denoised, 3) + "x"
                                                      : "-"});
  page.table({"sigma", "MSE of the noisy input", "MSE of the denoised output", "improvement"}, rows,
             "Test-set MSE over " + std::to_string(facts.eval_images) + " images (mean over pixels)");
  page.paragraph("Files: metrics.json (these numbers), losses.csv (every step's loss), model_epoch_<e>.safetensors "
                 "(state dicts that load into the PyTorch model), checkpoint.safetensors (for --resume).");
  page.write(folder.file("report.html"));
}

// --- train -------------------------------------------------------------------------------------------

// command_line: the command as typed, for the report; continue_line: the
// same without --stop-after-steps, for the "continue with" hint.
int train(const TrainSettings& s, const cli::Command& command, const std::string& command_line,
          const std::string& continue_line) {
  const run::Stopwatch wall;
  const Device device = cli::setup_device(s.common);
  const run::RunFolder folder = training::open_run_folder(s.common, command, run::default_run_folder(kProgram));

  // Data (errors name the missing file and how to fetch it).
  const data::DatasetName which = dataset_name(s.common.dataset);
  const data::Dataset train_set = take_first(data::load_mnist(s.common.data_dir, data::Split::train, which), s.train_images);
  const data::Dataset test_set = data::load_mnist(s.common.data_dir, data::Split::test, which);
  const data::Dataset eval_set = take_first(test_set, s.eval_images);
  const Tensor digits = gather(test_set, figure_indices(test_set));

  // Model, optimiser, streams.
  const uint64_t seed = static_cast<uint64_t>(s.common.seed);
  Generator init_gen(seed);
  UNet model(s.hidden, UNetConditioning::none, init_gen);
  model.to(device);
  model.train();
  Adam optimizer(model.parameters(), s.lr);
  data::DataLoader loader(train_set, {.batch_size = s.batch_size, .shuffle = true}, Generator(seed + 1));
  Generator noise_gen(seed + 2);
  const uint64_t eval_seed = seed + 3;

  // The loop: resume, checkpoints, Ctrl-C and NaN/Inf stops (training_loop.h).
  training::TrainingLoopSetup setup =
      training::command_line_setup(kProgram, folder, s.common, command, continue_line, device);
  setup.settings = training_settings(s);
  setup.model_description = "this UNet";
  setup.epochs = s.epochs;
  training::TrainingLoop loop(setup, {model, optimizer, nullptr, loader, noise_gen});
  if (s.common.resume) loop.resume();
  run::LossHistory& losses = loop.losses();
  const int64_t steps_per_epoch = loop.steps_per_epoch();

  std::cerr << kProgram << ": training UNet D=" << s.hidden << " (" << model.parameter_count() << " parameters) on "
            << cli::device_description(device, cli::cpu_threads()) << "\n  "
            << train_set.description << ": " << steps_per_epoch << " steps of " << s.batch_size << " per epoch x "
            << s.epochs << " epochs, sigma " << s.sigma << ", Adam lr " << s.lr << "\n  run folder: " << folder.path()
            << (s.common.resume ? "\n  resuming at epoch " + std::to_string(loop.start_epoch() + 1) + ", step " +
                                      std::to_string(losses.size())
                                : "")
            << std::endl;

  // From here on Ctrl-C stops at the next step boundary with a checkpoint.
  loop.begin();
  write_noising_figure(folder.file("noising.png"), digits, eval_seed);

  // One step: z = x + sigma * eps with fresh noise for every batch fetched; L2 loss D(z) vs x.
  auto step = [&](const data::Batch& batch) {
    const Tensor x = batch.images.to(device);
    const Tensor eps = randn(x.shape(), noise_gen, device);
    const Tensor z = add(x, scale(eps, static_cast<float>(s.sigma)));
    return mse_loss(model.forward(z), x);
  };
  // End of an epoch (after the checkpoint and the loss files): figure, model-only checkpoint.
  auto epoch_end = [&](int64_t epoch) {
    const run::Stopwatch epoch_work;
    const std::string epoch_name = std::to_string(epoch + 1);
    write_denoised_figure(folder.file("denoised_epoch_" + epoch_name + ".png"), model, digits, s.sigma, device, eval_seed);
    model.save(folder.file("model_epoch_" + epoch_name + ".safetensors"));
    loop.progress().note("epoch " + epoch_name + "/" + std::to_string(s.epochs) + " done: mean loss " +
                         report::format_number(losses.mean(epoch * steps_per_epoch, losses.size()), 5) +
                         "; wrote denoised_epoch_" + epoch_name + ".png and model_epoch_" + epoch_name +
                         ".safetensors (" + run::format_duration(epoch_work.seconds()) + ")");
  };
  if (const int status = loop.run(step, epoch_end); status != cli::kExitOk) return status;

  // Evaluation on the test set, the out-of-distribution figure, the report.
  std::cerr << kProgram << ": evaluating on " << eval_set.size() << " test images at " << kFigureSigmas.size()
            << " noise levels..." << std::endl;
  const std::vector<SigmaMse> mse = test_mse(model, eval_set, device, s.batch_size, eval_seed);
  write_ood_figure(folder.file("ood.png"), model, digits, device, eval_seed);
  loop.write_loss_files();

  RunFacts facts;
  facts.command_line = command_line;
  facts.device = device;
  facts.threads = cli::cpu_threads();
  facts.parameters = model.parameter_count();
  facts.train_description = train_set.description;
  facts.test_description = test_set.description;
  facts.eval_images = eval_set.size();
  facts.steps_per_epoch = steps_per_epoch;
  facts.wall_seconds = wall.seconds();
  facts.train_seconds = loop.train_seconds();
  facts.images_per_second = loop.progress().images_per_second();
  facts.resumed = s.common.resume;
  write_report(folder, s, facts, losses.values(), mse);

  for (const SigmaMse& row : mse)
    std::cerr << "  sigma " << sigma_text(row.sigma) << ": test MSE noisy " << report::format_number(row.noisy)
              << ", denoised " << report::format_number(row.denoised) << "\n";
  std::cerr << kProgram << ": done in " << run::format_duration(facts.wall_seconds) << " ("
            << report::format_number(facts.images_per_second) << " images/s); open " << folder.file("report.html")
            << std::endl;
  return cli::kExitOk;
}

// --- apply -----------------------------------------------------------------------------------------

struct ApplySettings {
  cli::CommonOptions common;
  std::string checkpoint;
  std::string input;
  int64_t hidden = 0;  // 0: read from the checkpoint
  int64_t batch_size = 256;
};

int apply(const ApplySettings& s) {
  const Device device = cli::setup_device(s.common);

  // Inputs: one PNG or every *.png in a folder; all checked before any work.
  std::vector<fs::path> inputs;
  std::error_code error;
  if (fs::is_directory(s.input, error)) {
    for (const auto& entry : fs::directory_iterator(s.input))
      if (entry.is_regular_file() && entry.path().extension() == ".png") inputs.push_back(entry.path());
    std::sort(inputs.begin(), inputs.end());
    if (inputs.empty()) throw cli::UsageError("flag '--input': the folder '" + s.input + "' holds no .png files");
  } else if (fs::is_regular_file(s.input, error)) {
    inputs.push_back(s.input);
  } else {
    throw cli::UsageError("flag '--input': '" + s.input + "' is neither a PNG file nor a folder");
  }
  const std::string out_dir = s.common.out.empty() ? "denoised" : s.common.out;
  std::vector<float> pixels;
  for (const fs::path& path : inputs) {
    const image::Image picture = image::read_png(path.string());
    if (picture.width != 28 || picture.height != 28 || picture.channels != 1)
      throw Error("denoiser apply: '" + path.string() + "' is " + std::to_string(picture.width) + "x" +
                  std::to_string(picture.height) + (picture.channels == 1 ? " grayscale" : " color (RGB)") +
                  "; expected a 28x28 grayscale PNG (white digit on black, like MNIST)");
    for (uint8_t byte : picture.pixels) pixels.push_back(static_cast<float>(byte) / 255.0f);
  }
  for (const fs::path& path : inputs)
    if (fs::exists(fs::path(out_dir) / path.filename()) &&
        fs::equivalent(fs::path(out_dir) / path.filename(), path, error))
      throw cli::UsageError("flag '--out': '" + out_dir + "' would overwrite the input '" + path.string() +
                            "'; choose another folder");

  // The model: its width from the checkpoint (or --hidden), every key checked.
  const NamedTensors state = ckpt::load_model_state(s.checkpoint);
  int64_t hidden = s.hidden;
  if (hidden == 0) {
    hidden = 128;
    for (const auto& [key, tensor] : state)
      if (key == "inc.0.0.weight" && tensor.dim() == 4 && tensor.size(0) >= 1) hidden = tensor.size(0);
  }
  Generator unused(0);
  UNet model(hidden, UNetConditioning::none, unused);
  ckpt::check_state_fits(model, state, s.checkpoint,
                         "the unconditional UNet with D=" + std::to_string(hidden) + " (denoiser)");
  model.load_state_dict(state);
  model.to(device);
  model.eval();

  const run::RunFolder folder(out_dir);
  const Tensor x = Tensor::from_vector(pixels, {static_cast<int64_t>(inputs.size()), 1, 28, 28});
  const Tensor y = denoise(model, x, device, s.batch_size);
  const std::vector<float> values = y.to_vector();
  for (size_t i = 0; i < inputs.size(); ++i) {
    image::Image picture(28, 28, 1);
    for (size_t p = 0; p < 784; ++p) picture.pixels[p] = image::to_byte(values[i * 784 + p]);
    image::write_png(folder.file(inputs[i].filename().string()), picture);
  }
  std::cerr << kProgram << ": denoised " << inputs.size() << " image(s) with " << s.checkpoint << " (UNet D=" << hidden
            << ", " << device.str() << ") into " << folder.path() << std::endl;
  return cli::kExitOk;
}

}  // namespace

int main(const std::vector<std::string>& args) {
  const std::string command_line = cli::command_line(kProgram, args);
  const std::string continue_line = cli::continue_command_line(kProgram, args);
  return cli::run_main(kProgram, [&] {
    cli::Program program(kProgram,
                         "Part 1 of the diffusion assignment: a UNet that maps a noisy MNIST digit z = x + sigma*eps "
                         "to the clean digit x (L2 loss).");

    TrainSettings t;
    cli::Command& train_cmd = program.add_command("train", "Train the denoiser and write a run folder with every figure, "
                                                           "metrics.json, checkpoints and report.html.");
    cli::add_device_flags(train_cmd, t.common);
    cli::add_out_flag(train_cmd, t.common, "runs/denoiser-YYYYMMDD-HHMMSS");
    cli::add_training_flags(train_cmd, t.common, quick_description());
    cli::add_data_flags(train_cmd, t.common);
    train_cmd.flag("sigma", &t.sigma, "noise level of the training pairs z = x + sigma*eps").at_least(0);
    train_cmd.flag("batch-size", &t.batch_size, "images per optimiser step").at_least(1);
    train_cmd.flag("epochs", &t.epochs, "passes over the training images").at_least(1);
    train_cmd.flag("lr", &t.lr, "Adam learning rate (constant)").greater_than(0);
    train_cmd.flag("hidden", &t.hidden, "UNet hidden width D (channels of the first block)").at_least(1).value_name("D");
    train_cmd.flag("train-images", &t.train_images, "train on the first N training images only (0: all)")
        .at_least(0)
        .value_name("N");
    train_cmd.flag("eval-images", &t.eval_images, "compute the test MSE table on the first N test images (0: all)")
        .at_least(0)
        .value_name("N");
    cli::add_stop_after_steps_flag(train_cmd, t.common);
    train_cmd.set_epilog(
        "Defaults are the assignment's: sigma 0.5, batch 256, 5 epochs, Adam lr 1e-4, D = 128, all 60000 training "
        "images, shuffled, fresh noise for every batch. On a CPU that takes hours: use --quick there.\n"
        "Ctrl-C (or SIGTERM) saves checkpoint.safetensors and exits with status 130; --resume --out DIR continues "
        "with the same losses as an uninterrupted run. A NaN/Inf loss stops with status 3. Bad flags: status 2.\n"
        "Examples:\n  denoiser train --quick --device cpu --out runs/quick\n  denoiser train --device cuda --out runs/part1");

    ApplySettings a;
    cli::Command& apply_cmd = program.add_command(
        "apply", "Denoise 28x28 grayscale PNGs (white digit on black) with a checkpoint of this app or of the PyTorch "
                 "model (same state-dict keys).");
    apply_cmd.flag("checkpoint", &a.checkpoint,
                   "a model_epoch_<e>.safetensors, checkpoint.safetensors, or a PyTorch state dict saved with "
                   "safetensors.torch.save_file")
        .required()
        .value_name("FILE");
    apply_cmd.flag("input", &a.input, "a PNG file, or a folder whose *.png files are all denoised")
        .required()
        .value_name("PATH");
    cli::add_out_flag(apply_cmd, a.common, "denoised", "the folder the denoised PNGs are written to");
    cli::add_device_flags(apply_cmd, a.common, /*with_seed=*/false);
    apply_cmd.flag("hidden", &a.hidden, "UNet width D (0: read it from the checkpoint)").at_least(0).value_name("D");
    apply_cmd.flag("batch-size", &a.batch_size, "images per forward pass").at_least(1);
    apply_cmd.set_epilog("Each input is written under the same file name into --out.\nExample:\n"
                         "  denoiser apply --checkpoint runs/quick/model_epoch_2.safetensors --input my_digits/ --out cleaned");

    std::string help_text;
    program.set_default_command("train");
    cli::Command* command = program.parse(args, &help_text);
    if (command == nullptr) {  // --help
      std::cout << help_text;
      return cli::kExitOk;
    }
    if (command == &apply_cmd) return apply(a);

    if (t.common.quick) {  // the preset fills in what the user left unset
      if (!train_cmd.was_set("hidden")) t.hidden = kQuickHidden;
      if (!train_cmd.was_set("train-images")) t.train_images = kQuickTrainImages;
      if (!train_cmd.was_set("epochs")) t.epochs = kQuickEpochs;
      if (!train_cmd.was_set("batch-size")) t.batch_size = kQuickBatchSize;
      if (!train_cmd.was_set("lr")) t.lr = kQuickLr;
      if (!train_cmd.was_set("eval-images")) t.eval_images = kQuickEvalImages;
    }
    return train(t, train_cmd, command_line, continue_line);
  });
}

}  // namespace engine::denoiser_app
