// ddpm: Part 2 of the diffusion assignment, a time- or class-conditioned
// DDPM on MNIST with classifier-free guidance. The whole program lives in
// apps/common/ddpm_app.cpp (so the tests can run it in-process); see there
// and docs/ddpm.md.
#include <string>
#include <vector>

#include "apps/common/ddpm_app.h"

int main(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return engine::ddpm_app::main(args);
}
