#!/usr/bin/env bash
# The test command: installs missing build packages, configures (Release,
# CUDA backend when nvcc is found), builds everything and runs the CTest suite.
# CUDA tests skip with a message on machines without a GPU.
#   tools/test.sh                 # all tests
#   BUILD_DIR=build-asan CMAKE_ARGS=-DENGINE_SANITIZE=ON tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
# MNIST for the end-to-end tests (verified by md5; skipped when already there).
# Tests that need it skip with a message when it is missing; in CI it must be there.
if ! tools/fetch_mnist.sh; then
  if [[ "${CI:-}" == "true" ]]; then echo "test.sh: could not fetch MNIST (needed in CI)" >&2; exit 1; fi
  echo "test.sh: WARNING: could not fetch MNIST; the tests that train on it will be skipped" >&2
fi
BUILD_DIR=${BUILD_DIR:-build}
# ctest runs tests in parallel on few cores: spinning OpenMP threads would starve each other.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
cmake -S . -B "$BUILD_DIR" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
cd "$BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" "$@"
