"""The PyTorch side of the side-by-side benchmark: the twin of the engine's
apps/train_bench.cpp, same flags, same loop, same JSON (impl "pytorch").

    /usr/bin/python3 tools/parity/bench_torch.py train --model denoiser [--hidden 128] [--batch 256] ...
    /usr/bin/python3 tools/parity/bench_torch.py sample --model class --guidance 5 ...

train: warm-up steps, then timed steps of forward, mse loss, backward, Adam
  (lr 1e-3) on synthetic images, exactly as train_bench's (see its header).
ops: the UNet's costly ops one by one (train_bench ops: same names, shapes),
  forward and backward timed separately.
sample: timed DDPM reverse steps in eval mode under no_grad; images/s through
  the whole 300-step sampler = batch / (seconds per step * 300).
Threads: torch.set_num_threads(--threads) (default: $OMP_NUM_THREADS, else 2).
Eager mode; pass --compile to try torch.compile (PyTorch 2 only).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

MODES = {"denoiser": "none", "time": "time", "class": "time_and_class"}


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


def median(values):
    v = sorted(values)
    n = len(v)
    return 0.0 if n == 0 else (v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2]))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_train(args, model, schedule, device):
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    N = args.batch
    labels = torch.arange(N, device=device) % 10
    steps, fwd, bwd, optim = [], [], [], []
    load_before = load_average()
    for step in range(args.warmup + args.steps):
        x0 = torch.rand(N, 1, 28, 28, device=device)
        sync(device)
        start = time.perf_counter()
        if args.model == "denoiser":
            eps = torch.randn_like(x0)
            loss = F.mse_loss(model(x0 + 0.5 * eps), x0)
        else:
            t = torch.randint(1, schedule.num_steps + 1, (N,), device=device)
            eps = torch.randn_like(x0)
            xt = schedule.add_noise(x0, eps, t)
            tt = schedule.time_input(t.cpu()).to(device)
            if args.model == "class":
                keep = (torch.rand(N, device=device) >= 0.1).float()
                c = F.one_hot(labels, 10).float() * keep.view(-1, 1)
                loss = F.mse_loss(model(xt, tt, c), eps)
            else:
                loss = F.mse_loss(model(xt, tt), eps)
        sync(device)
        t_forward = time.perf_counter() - start
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sync(device)
        t_backward = time.perf_counter() - start
        opt.step()
        value = loss.item()  # read back every step, as train_bench does
        t_step = time.perf_counter() - start
        if step == 0:
            print(f"bench_torch: first loss {value}", file=sys.stderr)
        if step >= args.warmup:
            steps.append(t_step)
            fwd.append(t_forward)
            bwd.append(t_backward - t_forward)
            optim.append(t_step - t_backward)
    med = median(steps)
    return {"step_seconds": steps, "median_step_s": med, "images_per_s": N / med if med > 0 else 0.0,
            "median_forward_s": median(fwd), "median_backward_s": median(bwd), "median_optimizer_s": median(optim),
            "loadavg_before": load_before, "loadavg_after": load_average()}


@torch.no_grad()
def run_sample(args, model, schedule, device):
    model.eval()
    N, T = args.batch, schedule.num_steps
    guided = args.model == "class" and args.guidance > 0
    c = F.one_hot(torch.arange(N, device=device) % 10, 10).float() if args.model == "class" else None
    x = torch.randn(N, 1, 28, 28, device=device)
    steps = []
    load_before = load_average()
    for k in range(args.warmup + args.steps):
        t = T - k
        sync(device)
        start = time.perf_counter()
        eps = ref.ddpm_predict_noise(model, schedule, x, t, c, args.guidance if guided else None)
        x = ref.ddpm_reverse_step(schedule, x, eps, t, torch.randn_like(x))
        sync(device)
        if k >= args.warmup:
            steps.append(time.perf_counter() - start)
    med = median(steps)
    return {"guidance": args.guidance if guided else 0.0, "sampler_steps": T, "step_seconds": steps,
            "median_step_s": med, "images_per_s": N / (med * T) if med > 0 else 0.0,
            "loadavg_before": load_before, "loadavg_after": load_average()}


def unet_op_cases(N, D):
    """The ops of train_bench's `ops` command, same names and shapes."""
    conv = lambda s, p: (lambda x, w, b: F.conv2d(x, w, b, s, p))  # noqa: E731
    tconv = lambda s, p: (lambda x, w, b: F.conv_transpose2d(x, w, b, s, p))  # noqa: E731
    return [
        ("conv3x3 D->D 28x28", [(N, D, 28, 28), (D, D, 3, 3), (D,)], conv(1, 1)),
        ("conv3x3 2D->D 28x28", [(N, 2 * D, 28, 28), (D, 2 * D, 3, 3), (D,)], conv(1, 1)),
        ("conv3x3 D->D 14x14", [(N, D, 14, 14), (D, D, 3, 3), (D,)], conv(1, 1)),
        ("conv3x3 2D->2D 7x7", [(N, 2 * D, 7, 7), (2 * D, 2 * D, 3, 3), (2 * D,)], conv(1, 1)),
        ("conv3x3 s2 D->D 28->14", [(N, D, 28, 28), (D, D, 3, 3), (D,)], conv(2, 1)),
        ("convT4 s2 2D->D 14->28", [(N, 2 * D, 14, 14), (2 * D, D, 4, 4), (D,)], tconv(2, 1)),
        ("convT4 s2 4D->D 7->14", [(N, 4 * D, 7, 7), (4 * D, D, 4, 4), (D,)], tconv(2, 1)),
        ("convT7 s7 2D->2D 1->7", [(N, 2 * D, 1, 1), (2 * D, 2 * D, 7, 7), (2 * D,)], tconv(7, 0)),
        ("batchnorm train D 28x28", [(N, D, 28, 28), (D,), (D,)],
         lambda x, w, b: F.batch_norm(x, torch.zeros(D), torch.ones(D), w, b, training=True)),
        ("gelu D 28x28", [(N, D, 28, 28)], F.gelu),
        ("concat D+D 28x28", [(N, D, 28, 28), (N, D, 28, 28)], lambda a, b: torch.cat([a, b], 1)),
    ]


def run_ops(args):
    N, D = args.batch, args.hidden
    load_before = load_average()
    ops = {}
    for name, shapes, f in unet_op_cases(N, D):
        inputs = [(torch.rand(s) + 0.5 if len(s) == 1 else torch.randn(s)).requires_grad_(True) for s in shapes]
        fwd, bwd = [], []
        for rep in range(args.warmup + args.steps):
            for x in inputs:
                x.grad = None
            start = time.perf_counter()
            y = f(*inputs)
            t_forward = time.perf_counter() - start
            gy = torch.ones_like(y)
            start = time.perf_counter()
            y.backward(gy)
            t_backward = time.perf_counter() - start
            if rep >= args.warmup:
                fwd.append(t_forward)
                bwd.append(t_backward)
        ops[name] = {"forward_s": median(fwd), "backward_s": median(bwd)}
    return {"ops": ops, "loadavg_before": load_before, "loadavg_after": load_average()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["train", "sample", "ops"])
    parser.add_argument("--model", choices=list(MODES), default="time")
    parser.add_argument("--hidden", type=int, default=0, help="0: denoiser 128, time/class 64")
    parser.add_argument("--batch", type=int, default=0, help="0: train 256/128/128, sample 64")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch 2)")
    args = parser.parse_args()
    if args.hidden == 0:
        args.hidden = 128 if args.model == "denoiser" else 64
    if args.batch == 0:
        args.batch = (256 if args.model == "denoiser" else 128) if args.kind in ("train", "ops") else 64
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = ref.UNet(args.hidden, MODES[args.model]).to(device)
    if args.compile:
        model = torch.compile(model)
        model.conditioning = MODES[args.model]
    schedule = ref.DDPMSchedule()
    result = {"impl": "pytorch" + ("-compile" if args.compile else ""), "kind": args.kind, "model": args.model,
              "hidden": args.hidden, "batch": args.batch, "warmup": args.warmup, "steps": args.steps,
              "threads": torch.get_num_threads(), "torch": torch.__version__, "device": str(device)}
    if args.kind == "ops":
        result.update(run_ops(args))
    else:
        result.update((run_train if args.kind == "train" else run_sample)(args, model, schedule, device))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
