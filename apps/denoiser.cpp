// denoiser: Part 1 of the diffusion assignment, a UNet that maps a noisy MNIST
// digit to the clean one. The whole program lives in
// apps/common/denoiser_app.cpp (so that the tests run it in-process); see
// there, and docs/denoiser.md for how to run it and what it writes.
#include <string>
#include <vector>

#include "apps/common/denoiser_app.h"

int main(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return engine::denoiser_app::main(args);
}
