#!/usr/bin/env bash
# The main job: the whole diffusion assignment on MNIST.
#   Part 1: the one-step denoiser          (bin/denoiser train)
#   Part 2: the time-conditioned DDPM      (bin/ddpm train --model time)
#           the class-conditioned DDPM     (bin/ddpm train --model class, CFG)
# On a machine with an NVIDIA GPU it runs the assignment's full settings on
# cuda; without one it runs each app's --quick preset on the CPU (minutes
# instead of hours; each report says what the preset trades).
# Everything goes into one folder, runs/assignment-<date>/, with index.html
# linking the three reports. Extra arguments are passed to every app
# (e.g. --seed 1, --dataset fashion).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
tools/fetch_mnist.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target denoiser ddpm

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  mode=(--device cuda)
  echo "run.sh: NVIDIA GPU found: the assignment's full settings on cuda" >&2
else
  mode=(--device cpu --quick)
  # Passive OpenMP waiting: spinning threads cost a lot when the cores are shared.
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
  echo "run.sh: no GPU: the --quick presets on the CPU (see each report for what they trade)" >&2
fi

out=runs/assignment-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
"$BUILD_DIR/bin/denoiser" train "${mode[@]}" --out "$out/part1-denoiser" "$@"
"$BUILD_DIR/bin/ddpm" train --model time "${mode[@]}" --out "$out/part2-time" "$@"
"$BUILD_DIR/bin/ddpm" train --model class "${mode[@]}" --out "$out/part2-class" "$@"

cat > "$out/index.html" <<HTML
<!doctype html><html><head><meta charset="utf-8"><title>Diffusion assignment: $out</title></head>
<body><h1>Diffusion assignment on MNIST</h1>
<p>Run folder <code>$out</code>, settings: <code>${mode[*]} $*</code>.</p>
<ul>
<li><a href="part1-denoiser/report.html">Part 1: one-step denoising UNet</a></li>
<li><a href="part2-time/report.html">Part 2: time-conditioned DDPM</a></li>
<li><a href="part2-class/report.html">Part 2: class-conditioned DDPM with classifier-free guidance</a></li>
</ul></body></html>
HTML
echo "run.sh: done: open $out/index.html" >&2
