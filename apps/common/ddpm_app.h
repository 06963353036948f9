// The `ddpm` app (Part 2 of the diffusion assignment) as a function, so that
// the binary (apps/ddpm.cpp) and the end-to-end tests
// (tests/apps/ddpm_app_test.cpp) run exactly the same code:
//
//   ddpm train  --model time|class [flags]   train a DDPM, write a run folder
//   ddpm sample --model time|class --checkpoint FILE [flags]   draw samples
//
// `ddpm --help`, `ddpm train --help` and `ddpm sample --help` list every
// flag; docs/ddpm.md explains the run folder and the math behind it.
#pragma once
#include <string>
#include <vector>

namespace engine::ddpm_app {

// Runs the app on `args` (the arguments after the program name) and returns
// its exit status (cli::kExitOk, kExitUsage, kExitError, kExitDiverged,
// kExitInterrupted). Errors are printed to stderr, never thrown.
int main(const std::vector<std::string>& args);

}  // namespace engine::ddpm_app
