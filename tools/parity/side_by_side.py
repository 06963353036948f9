"""The side-by-side benchmark: the engine (apps/train_bench.cpp) against the
PyTorch reference (tools/parity/bench_torch.py), on the same machine, the
same thread count, alternating, and prints images/s of each and the ratio.

    cmake --build build --target train_bench
    /usr/bin/python3 tools/parity/side_by_side.py --engine build/bin/train_bench

What runs, each as a fresh process (warm-up steps first, then timed steps;
each run reports the median of its timed steps):
  training  denoiser D=128 batch 256 (Part 1), time D=64 batch 128 and
            class D=64 batch 128 (Part 2): forward, mse loss, backward, Adam
  sampling  the DDPM sampler in eval mode, batch --sample-batch: time model;
            class model with classifier-free guidance 5 (one forward of 2N per
            step); class model without guidance. --sample-steps steps are timed
            and extrapolated to the 300-step sampler (every step costs the same).
  ops       the UNet's costly ops one by one at the time model's shapes (D 64,
            batch 128), forward and backward (train_bench ops / bench_torch.py
            ops): where the difference comes from, op by op.
Fairness: both get OMP_NUM_THREADS = --threads (PyTorch also
torch.set_num_threads), and OMP_WAIT_POLICY = --wait-policy. The default is
passive: on a shared, oversubscribed machine the spinning OpenMP threads of
the default policy steal the CPU from the working ones, which slowed both
sides by 4x to 60x in our measurements. Runs alternate (engine first in even
rounds, PyTorch first in odd ones), so a change of the machine's load hits
both; the 1-minute load average is recorded with each run and printed.
The median over --rounds rounds is reported.

--markdown FILE appends the table (with command, machine and date) to FILE;
--json FILE writes every run's raw JSON.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = [("denoiser", {}), ("time", {}), ("class", {})]
SAMPLE = [("time", {"guidance": 0.0}), ("class", {"guidance": 5.0}), ("class", {"guidance": 0.0})]


def run(cmd, env):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def command(impl, kind, model, extra, args):
    flags = ["--model", model, "--warmup", str(args.warmup)]
    if kind == "train":
        flags += ["--steps", str(args.steps)]
    else:
        flags += ["--steps", str(args.sample_steps), "--batch", str(args.sample_batch),
                  "--guidance", str(extra["guidance"])]
    if impl == "engine":
        return [args.engine, kind] + flags
    return [args.python, os.path.join(HERE, "bench_torch.py"), kind, "--threads", str(args.threads)] + flags


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="build/bin/train_bench", help="the train_bench binary")
    parser.add_argument("--python", default="/usr/bin/python3", help="a python with torch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--wait-policy", default="passive", choices=["passive", "active", "unset"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per run")
    parser.add_argument("--sample-steps", type=int, default=3, help="timed sampler steps per run")
    parser.add_argument("--sample-batch", type=int, default=64)
    parser.add_argument("--only", choices=["train", "sample", "ops"], help="run one part only")
    parser.add_argument("--op-reps", type=int, default=3, help="timed repetitions per op")
    parser.add_argument("--models", default="denoiser,time,class", help="training configurations to run")
    parser.add_argument("--markdown", help="append the result table to this file")
    parser.add_argument("--json", help="write every run's JSON here")
    args = parser.parse_args()

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    if args.wait_policy != "unset":
        env["OMP_WAIT_POLICY"] = args.wait_policy
    models = args.models.split(",")
    cases = []
    if args.only in (None, "train"):
        cases += [("train", m, e) for m, e in TRAIN if m in models]
    if args.only in (None, "sample"):
        cases += [("sample", m, e) for m, e in SAMPLE]

    runs = []
    for r in range(args.rounds):
        for i, (kind, model, extra) in enumerate(cases):
            order = ["engine", "pytorch"] if (r + i) % 2 == 0 else ["pytorch", "engine"]
            for impl in order:
                result = run(command(impl, kind, model, extra, args), env)
                result.update(round=r, impl_side=impl)
                runs.append(result)
                print(f"round {r} {kind:6s} {model:8s} g={extra.get('guidance', '-')!s:4s} {impl:8s} "
                      f"{result['images_per_s']:9.2f} img/s  load {result['loadavg_before']:.2f}",
                      file=sys.stderr, flush=True)

    def label(kind, model, extra, first):
        if kind == "train":
            return f"train {model} D={first['hidden']} batch {first['batch']}"
        g = extra["guidance"]
        what = "time" if model == "time" else ("class, guidance %g" % g if g > 0 else "class, no guidance")
        return f"sample {what}, batch {first['batch']} (300 steps, from {args.sample_steps})"

    op_runs = []
    if args.only in (None, "ops"):
        for r in range(args.rounds):
            order = ["engine", "pytorch"] if r % 2 == 0 else ["pytorch", "engine"]
            for impl in order:
                flags = ["--warmup", "1", "--steps", str(args.op_reps)]
                cmd = [args.engine, "ops"] + flags if impl == "engine" else \
                    [args.python, os.path.join(HERE, "bench_torch.py"), "ops", "--threads", str(args.threads)] + flags
                result = run(cmd, env)
                result.update(round=r, impl_side=impl)
                op_runs.append(result)
                print(f"round {r} ops {impl}: load {result['loadavg_before']:.2f}", file=sys.stderr, flush=True)

    rows = []
    for kind, model, extra in cases:
        sel = [x for x in runs if x["kind"] == kind and x["model"] == model
               and (kind == "train" or x["guidance"] == extra["guidance"])]
        e = [x for x in sel if x["impl_side"] == "engine"]
        t = [x for x in sel if x["impl_side"] == "pytorch"]
        ei = statistics.median(x["images_per_s"] for x in e)
        ti = statistics.median(x["images_per_s"] for x in t)
        load = statistics.mean(x["loadavg_before"] for x in sel)
        phases = ""
        if kind == "train":
            phases = " / ".join(f"{statistics.median(x[k] for x in e):.2f}:{statistics.median(x[k] for x in t):.2f}"
                                for k in ("median_forward_s", "median_backward_s", "median_optimizer_s"))
        rows.append((label(kind, model, extra, sel[0]), ei, ti, ei / ti if ti > 0 else float("nan"), load, phases))

    header = ("| configuration | engine img/s | PyTorch img/s | engine / PyTorch | load avg | "
              "fwd / bwd / Adam s (engine:PyTorch) |\n|---|---:|---:|---:|---:|---|")
    lines = [header] + [f"| {a} | {b:.2f} | {c:.2f} | {d:.2f} | {e:.1f} | {f} |" for a, b, c, d, e, f in rows]
    table = "\n".join(lines) if rows else ""
    if op_runs:
        e = [x for x in op_runs if x["impl_side"] == "engine"]
        t = [x for x in op_runs if x["impl_side"] == "pytorch"]
        ops_lines = [f"\nOps at D={e[0]['hidden']}, batch {e[0]['batch']} (ms, median over rounds; load avg "
                     f"{statistics.mean(x['loadavg_before'] for x in op_runs):.1f}):\n",
                     "| op | engine fwd | PyTorch fwd | engine bwd | PyTorch bwd | engine / PyTorch time (fwd+bwd) |",
                     "|---|---:|---:|---:|---:|---:|"]
        for name in e[0]["ops"]:
            ef = statistics.median(x["ops"][name]["forward_s"] for x in e) * 1e3
            eb = statistics.median(x["ops"][name]["backward_s"] for x in e) * 1e3
            tf = statistics.median(x["ops"][name]["forward_s"] for x in t) * 1e3
            tb = statistics.median(x["ops"][name]["backward_s"] for x in t) * 1e3
            ops_lines.append(f"| {name} | {ef:.1f} | {tf:.1f} | {eb:.1f} | {tb:.1f} | {(ef + eb) / (tf + tb):.2f} |")
        table += "\n".join(ops_lines)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs + op_runs, f, indent=1)
    if args.markdown:
        torch_version = next((x.get("torch") for x in runs + op_runs if x.get("torch")), "?")
        with open(args.markdown, "a") as f:
            f.write(f"\n### {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, {cpu_name()}, "
                    f"{os.cpu_count()} CPUs, {args.threads} threads, OMP_WAIT_POLICY={args.wait_policy}, "
                    f"PyTorch {torch_version}\n\n")
            f.write("`" + " ".join(shlex.quote(a) for a in [args.python] + sys.argv) + "`\n\n")
            f.write(table + "\n")


if __name__ == "__main__":
    main()
