#!/usr/bin/env bash
# The test command: installs missing build packages, configures (Release,
# CUDA backend when nvcc is found), builds everything and runs the CTest suite.
# CUDA tests skip with a message on machines without a GPU.
#   tools/test.sh                 # all tests
#   BUILD_DIR=build-asan CMAKE_ARGS=-DENGINE_SANITIZE=ON tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
cd "$BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" "$@"
