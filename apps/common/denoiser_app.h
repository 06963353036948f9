// The `denoiser` app, Part 1 of the diffusion assignment: a one-step
// denoising UNet. It lives here, as a function, so that the binary
// (apps/denoiser.cpp) and the end-to-end tests (tests/apps/denoiser_test.cpp)
// run exactly the same code.
//
// The model sees a noisy digit z = x + sigma * eps (x a clean MNIST digit in
// [0, 1], eps ~ N(0, I) of the same shape) and is trained to output x, with
// the L2 loss
//   L = mean over the batch and pixels of (UNet(z) - x)^2.
// It is the unconditional UNet of models/unet.h (docs/unet.md).
//
//   denoiser train [flags]    trains it and writes a run folder (default command)
//   denoiser apply [flags]    denoises 28x28 grayscale PNGs with a checkpoint
//
// What `train` writes into the run folder (docs/denoiser.md shows them):
//   noising.png               test digits (columns) at sigma 0, .2, .4, .5, .6, .8, 1 (rows)
//   loss.png, losses.csv      the training loss of every step
//   denoised_epoch_<e>.png    after epoch e: clean, noisy (sigma), denoised rows
//   ood.png                   the same digits at every sigma above: noisy row, denoised row
//   metrics.json              test-set MSE of the denoiser and of the noisy input per sigma, speed
//   model_epoch_<e>.safetensors   the state dict after epoch e (loads into PyTorch)
//   checkpoint.safetensors    the training checkpoint (--resume continues from it)
//   report.html               all of the above on one page
//
// Exit statuses: cli::kExitOk (0), kExitError (1: a file is missing or bad,
// a write failed), kExitUsage (2: a bad command line, before any work),
// kExitDiverged (3: NaN/Inf loss), kExitInterrupted (130: Ctrl-C, SIGTERM or
// --stop-after-steps; the checkpoint is saved and --resume continues).
#pragma once
#include <string>
#include <vector>

namespace engine::denoiser_app {

// Runs the app on `args` (the arguments after the program name) and returns
// its exit status. Help goes to stdout, progress and errors to stderr;
// nothing is thrown.
int main(const std::vector<std::string>& args);

}  // namespace engine::denoiser_app
