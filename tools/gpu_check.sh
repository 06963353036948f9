#!/usr/bin/env bash
# The prepared GPU check: on a machine with an NVIDIA GPU, in one call,
#   1. detects the GPU and its architecture (nvidia-smi compute_cap, e.g. 9.0 -> sm_90),
#   2. configures a build directory for exactly that architecture,
#   3. builds the test and benchmark binaries,
#   4. runs the CUDA tests (every GoogleTest whose name contains "Cuda", and the
#      other tests that skip without a GPU),
#   5. runs compute-sanitizer memcheck and racecheck over a small subset of them,
#   6. runs the GPU benchmarks with a short minimum time,
# and writes ONE summary file with the outcome of every step; the full logs
# stay in <build-dir>/gpu_check_logs/. Designed to finish in under 8 minutes
# on an H200 (16 cores): every step has a time cap, and a step that would run
# past the overall budget is skipped and reported as such. Needs no network.
#
# Usage: tools/gpu_check.sh [options]
#   --summary FILE      where the summary goes (default: gpu_check_summary.txt)
#   --build-dir DIR     build directory (default: build-gpu-check)
#   --logs DIR          where the full log of each step goes (default: <build-dir>/gpu_check_logs);
#                       on the device tool: --summary "$OUT/gpu_check_summary.txt" --logs "$OUT/logs"
#   --prebuilt          skip configure and build; use the binaries already in --build-dir
#   --arch SM           CUDA architecture, e.g. 90 (default: detected with nvidia-smi)
#   --jobs N            parallel build jobs (default: number of cores)
#   --budget SECONDS    overall time budget (default: 470)
#   --test-filter F     gtest filter for the CUDA tests (default: every test named *Cuda*,
#                       plus the two CPU-suite tests that need a GPU)
#   --bench-filter R    benchmark regex (default: Cuda|Cudnn|Cublas)
#   --dry-run           print what would run (and write a summary saying so); run nothing
#   -h, --help          this text
# Exit status: 0 when every step that ran passed, 1 otherwise, 2 on bad usage.
set -u -o pipefail

summary="gpu_check_summary.txt"
build_dir="build-gpu-check"
prebuilt=0
arch=""
jobs="$(nproc 2>/dev/null || echo 4)"
budget=470
test_filter='*Cuda*:Conv.RejectsMixedDevices:Module.ToMovesTensorsInPlaceKeepingHandles'
bench_filter='Cuda|Cudnn|Cublas'
dry_run=0
log_dir=""

# Memcheck finds out-of-bounds and misaligned accesses and leaks of device
# memory; racecheck finds shared-memory races (block_sum's warp-sum array, the
# tiles of the GEMM/conv kernels). Both slow a program down 10-100x: small
# shapes only.
memcheck_filter='CudaElementwise.*:CudaReduce.SumAndMean:CudaReduce.MseLossBothArguments:CudaPool.*:CudaConcat.*:CudaBatchNorm.FusedGeluMatchesUnfusedKernels:CudaAdam.MultiTensorMatchesSingleTensorKernel:CudaRng.RandAndRandnFactories:CudaAllocator.FreedBlockIsReusedOnItsStream'
racecheck_filter='CudaReduce.SumAndMean:CudaElementwise.PerRowBroadcast:CudaBatchNorm.FusedGeluMatchesUnfusedKernels'

usage() { sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --summary) summary="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --logs) log_dir="$2"; shift 2 ;;
    --prebuilt) prebuilt=1; shift ;;
    --arch) arch="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    --test-filter) test_filter="$2"; shift 2 ;;
    --bench-filter) bench_filter="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$budget" in ''|*[!0-9]*) echo "gpu_check.sh: --budget expects seconds, got '$budget'" >&2; exit 2 ;; esac
case "$jobs" in ''|*[!0-9]*) echo "gpu_check.sh: --jobs expects a number, got '$jobs'" >&2; exit 2 ;; esac

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo_root" || exit 2
[ -n "$log_dir" ] || log_dir="$build_dir/gpu_check_logs"
start_time=$(date +%s)
overall_status=0

# --- The summary ----------------------------------------------------------------
mkdir -p "$(dirname "$summary")" 2>/dev/null
: > "$summary" || { echo "gpu_check.sh: cannot write $summary" >&2; exit 2; }
say() { printf '%s\n' "$*" | tee -a "$summary"; }
elapsed() { echo $(( $(date +%s) - start_time )); }
remaining() { echo $(( budget - $(elapsed) )); }

# Finds a CUDA tool in PATH, then in the usual installation folders.
find_cuda_tool() {
  local tool="$1" dir
  if command -v "$tool" >/dev/null 2>&1; then command -v "$tool"; return 0; fi
  for dir in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-13.0 /usr/local/cuda-12 /opt/cuda; do
    if [ -n "$dir" ] && [ -x "$dir/bin/$tool" ]; then echo "$dir/bin/$tool"; return 0; fi
    if [ -n "$dir" ] && [ -x "$dir/compute-sanitizer/$tool" ]; then echo "$dir/compute-sanitizer/$tool"; return 0; fi
  done
  return 1
}

# run_step NAME CAP_SECONDS COMMAND...: runs COMMAND with a time limit of
# min(CAP, time left in the budget), logs to $log_dir/NAME.log, records
# PASS / FAIL / TIMEOUT / SKIPPED in the summary. Returns the command's status.
run_step() {
  local name="$1" cap="$2"; shift 2
  local left limit status step_start seconds
  left=$(remaining)
  if [ "$dry_run" = 1 ]; then
    say "[DRY RUN] $name (cap ${cap}s): $*"
    return 0
  fi
  if [ "$left" -lt 15 ]; then
    say "[SKIPPED] $name: the ${budget}s budget is spent ($(elapsed)s elapsed)"
    overall_status=1
    return 1
  fi
  limit=$(( cap < left ? cap : left ))
  step_start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$log_dir/$name.log" 2>&1
  status=$?
  seconds=$(( $(date +%s) - step_start ))
  if [ "$status" = 0 ]; then
    say "[PASS] $name (${seconds}s)"
  elif [ "$status" = 124 ] || [ "$status" = 137 ]; then
    say "[TIMEOUT] $name: stopped after ${limit}s; log: $log_dir/$name.log"
    overall_status=1
  else
    say "[FAIL] $name: exit status $status (${seconds}s); log: $log_dir/$name.log"
    overall_status=1
  fi
  return "$status"
}

# The last lines of a step's log, indented, into the summary.
tail_log() {
  local name="$1" lines="${2:-15}"
  [ -f "$log_dir/$name.log" ] && tail -n "$lines" "$log_dir/$name.log" | sed 's/^/    /' | tee -a "$summary"
}

[ "$dry_run" = 1 ] || mkdir -p "$log_dir"
say "GPU check of the engine, $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname)"
say "commit: $(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo_root" status --porcelain 2>/dev/null | grep -q . && echo ' (with uncommitted changes)')"
[ "$dry_run" = 1 ] && say "DRY RUN: nothing below was executed; it is what a real run would do."

# --- 1. The GPU and its architecture ------------------------------------------------
say ""
say "== 1. GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu_line="$(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader 2>&1 | head -n 1)"
  say "nvidia-smi: $gpu_line"
  if [ -z "$arch" ]; then
    cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' ')"
    case "$cap" in
      [0-9]*.[0-9]*) arch="${cap%%.*}${cap#*.}" ;;  # "9.0" -> "90"
    esac
  fi
else
  say "nvidia-smi: not found"
fi
if [ -z "$arch" ]; then
  if [ "$dry_run" = 1 ]; then
    arch=90
    say "architecture: not detected; the dry run assumes sm_$arch"
  else
    say "architecture: not detected (no nvidia-smi or no GPU); pass --arch, e.g. --arch 90. Stopping."
    exit 1
  fi
else
  say "architecture: sm_$arch"
fi
nvcc_path="$(find_cuda_tool nvcc || true)"
say "nvcc: ${nvcc_path:-not found} $( [ -n "$nvcc_path" ] && "$nvcc_path" --version 2>/dev/null | grep -o 'release [0-9.]*' )"
sanitizer="$(find_cuda_tool compute-sanitizer || true)"
say "compute-sanitizer: ${sanitizer:-not found}"

tests_bin="$build_dir/tests/engine_tests"
bench_bin="$build_dir/bench/engine_bench"

# --- 2-3. Configure and build ---------------------------------------------------------
say ""
say "== 2. Configure and build ($build_dir, $jobs jobs)"
if [ "$prebuilt" = 1 ]; then
  say "--prebuilt: using $tests_bin and $bench_bin as they are"
else
  generator=()
  if command -v ninja >/dev/null 2>&1 && [ ! -f "$build_dir/CMakeCache.txt" ]; then generator=(-G Ninja); fi
  cuda_compiler=()
  [ -n "$nvcc_path" ] && cuda_compiler=(-DCMAKE_CUDA_COMPILER="$nvcc_path")
  if run_step configure 90 cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
       -DENGINE_WITH_CUDA=ON "${cuda_compiler[@]}" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
       -DENGINE_BUILD_TESTS=ON -DENGINE_BUILD_BENCH=ON; then
    grep -E "engine: CUDA backend" "$log_dir/configure.log" 2>/dev/null | sed 's/^/    /' | tee -a "$summary"
    run_step build 330 cmake --build "$build_dir" -j "$jobs" --target engine_tests engine_bench || tail_log build 25
  else
    tail_log configure 25
  fi
fi

# --- 4. CUDA tests ---------------------------------------------------------------------------
say ""
say "== 3. CUDA tests (gtest filter $test_filter)"
if [ "$dry_run" = 1 ] || [ -x "$tests_bin" ]; then
  run_step cuda_tests 150 "$tests_bin" --gtest_filter="$test_filter"
  tests_status=$?
  if [ "$dry_run" = 0 ]; then
    # GoogleTest's closing report: the counts, then the names of failed and skipped tests.
    sed -n '/^\[==========\] .* ran/,$p' "$log_dir/cuda_tests.log" | grep -E '^\[(==========|  PASSED  |  FAILED  |  SKIPPED )\]' \
      | sed 's/^/    /' | tee -a "$summary"
    grep -E -A4 ': Failure$' "$log_dir/cuda_tests.log" | head -n 40 | sed 's/^/    /' | tee -a "$summary"
    [ "$tests_status" != 0 ] && tail_log cuda_tests 10  # a crash ends the log without a report
  fi
else
  say "[SKIPPED] cuda_tests: $tests_bin was not built"
  overall_status=1
fi

# --- 5. compute-sanitizer -----------------------------------------------------------------------
say ""
say "== 4. compute-sanitizer"
if [ -z "$sanitizer" ] && [ "$dry_run" = 0 ]; then
  say "[SKIPPED] compute-sanitizer not found"
elif [ "$dry_run" = 1 ] || [ -x "$tests_bin" ]; then
  for tool in memcheck racecheck; do
    if [ "$tool" = memcheck ]; then filter="$memcheck_filter"; cap=120; else filter="$racecheck_filter"; cap=90; fi
    # No --leak-check: the caching allocator keeps its blocks until the process
    # ends, by design, and memcheck would report them as leaks.
    run_step "sanitizer_$tool" "$cap" "${sanitizer:-compute-sanitizer}" --tool "$tool" \
      --error-exitcode 1 "$tests_bin" --gtest_filter="$filter"
    if [ "$dry_run" = 0 ]; then
      grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^\[  (PASSED|FAILED) ' "$log_dir/sanitizer_$tool.log" \
        | sed 's/^/    /' | tee -a "$summary"
      grep -E '^========= (Invalid|Error|Race)' "$log_dir/sanitizer_$tool.log" | head -n 10 | sed 's/^/    /' | tee -a "$summary"
    fi
  done
else
  say "[SKIPPED] sanitizers: $tests_bin was not built"
fi

# --- 6. GPU benchmarks -------------------------------------------------------------------------
say ""
say "== 5. GPU benchmarks (filter $bench_filter)"
if [ "$dry_run" = 1 ] || [ -x "$bench_bin" ]; then
  # Google Benchmark >= 1.8 wants a unit ("0.05s"); older versions a plain number.
  min_time="0.05s"
  if [ "$dry_run" = 0 ] && ! "$bench_bin" --benchmark_filter=NO_SUCH_BENCHMARK --benchmark_min_time=0.05s >/dev/null 2>&1; then
    min_time="0.05"
  fi
  run_step bench 120 "$bench_bin" --benchmark_filter="$bench_filter" --benchmark_min_time="$min_time" \
    --benchmark_counters_tabular=true
  [ "$dry_run" = 0 ] && grep -E '^(BM_|Benchmark|---)' "$log_dir/bench.log" | sed 's/^/    /' | tee -a "$summary"
else
  say "[SKIPPED] bench: $bench_bin was not built"
  overall_status=1
fi

say ""
say "== Done in $(elapsed)s (budget ${budget}s): $( [ "$overall_status" = 0 ] && echo 'every step that ran passed' || echo 'SOME STEPS FAILED, TIMED OUT OR WERE SKIPPED (see above)' )"
say "logs: $log_dir"
exit "$overall_status"
