#!/usr/bin/env bash
# The main job. Until the diffusion apps land, it builds the engine and runs a
# short demo: the blocked CPU GEMM and one conv layer at the assignment's
# shapes, through the benchmark suite.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
"$BUILD_DIR/bench/engine_bench" --benchmark_filter='BM_Gemm.*/1024|BM_Conv2d.*/N:8/' --benchmark_min_time=0.2
