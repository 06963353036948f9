"""Writes the golden files of tests/parity/ into tests/data/golden/ from the
PyTorch reference (tools/parity/reference.py). Run from the repository root:

    /usr/bin/python3 tools/parity/make_golden.py

(Debian's python3-torch 1.13; see tools/parity/README.md). The output is
deterministic: fixed seeds, single thread.

How each expected value is made
-------------------------------
Inputs and initial weights are drawn in float32 by PyTorch. The expected
outputs and gradients are then computed in float64 from those same float32
numbers and rounded to float32 once: they are the exact answer, as far as a
float32 file can hold it, not PyTorch's float32 approximation of it. Beside
each expected tensor NAME the file holds the scalar "f32err.NAME": the largest
absolute error PyTorch's own float32 computation makes on it. The C++ tests
derive every tolerance from that scale (see tests/parity/golden.h): the engine
may err by a small multiple of what PyTorch itself errs by in float32, the
same round-off, never more.

Backward passes are checked through a weighted sum: for an op y = f(inputs),
the file holds a random upstream gradient "gy" and the gradients of
L = sum(gy * y) with respect to every input, i.e. the vector-Jacobian product
that autograd computes.

Files (all F32 unless noted; I64 for timesteps and num_batches_tracked):
  ops.safetensors             every op at every configuration the UNet uses
  unet_<mode>.safetensors     mode in none / time / time_and_class, D = 8, batch 4:
                              initial state dict, a batch, forward output, loss,
                              every parameter gradient, buffers after the step,
                              parameters after one Adam step, and a 5-step
                              training trajectory (batches, noise, losses)
  torch_checkpoint_<mode>.safetensors   the state dict after those 5 steps, as
                              PyTorch saves it: loaded strictly by the engine
  torch_checkpoint_<mode>_io.safetensors  an input batch and the eval-mode output
                              of that checkpoint
  ddpm.safetensors            the schedule (T = 300) and a 20-step end of the
                              sampler (time model; class model with guidance)
  unet_state_dict_keys.txt    "key dtype shape" per line, per mode, in order
"""
import argparse
import copy
import os
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

HIDDEN = 8
BATCH = 4
TRAJECTORY_STEPS = 5
LR = 1e-3
SAMPLER_STEPS = 20  # the sampler golden covers t = 20 .. 1
MODES = ref.CONDITIONINGS


class Golden:
    """An ordered collection of tensors; expect() also records the float32 error."""

    def __init__(self):
        self.tensors = OrderedDict()

    def put(self, name, t):
        assert name not in self.tensors, name
        t = t.detach().clone()  # a snapshot: the source may change later (parameters, buffers)
        self.tensors[name] = t.float() if t.is_floating_point() else t

    def expect(self, name, exact64, approx32):
        """exact64: the float64 answer; approx32: PyTorch's float32 computation of it."""
        self.put(name, exact64)
        err = (approx32.detach().double() - exact64.detach().double()).abs().max()
        self.put("f32err." + name, err.reshape(()))

    def save(self, path, metadata):
        ref.save_safetensors(path, self.tensors, metadata)
        return os.path.getsize(path)


def both(f, *inputs):
    """Runs f at float64 and at float32 on the same (float32) inputs.
    Returns (outputs64, outputs32, grads64, grads32) where grads are those of
    sum(gy * y) for each input that is floating point; gy is the last input."""
    results = []
    for dtype in (torch.float64, torch.float32):
        xs = [x.detach().clone().to(dtype).requires_grad_(True) if x.is_floating_point() else x for x in inputs[:-1]]
        gy = inputs[-1].to(dtype)
        y = f(*xs)
        (y * gy).sum().backward()
        results.append((y, [x.grad for x in xs]))
    return results[0][0], results[1][0], results[0][1], results[1][1]


def add_op(g, name, f, input_names, inputs, out_shape_fn=None):
    """Records inputs, a random gy, y and every input gradient of one op case."""
    with torch.no_grad():
        y_probe = f(*inputs)
    gy = torch.randn(y_probe.shape)
    y64, y32, g64, g32 = both(f, *inputs, gy)
    for n, x in zip(input_names, inputs):
        g.put(f"{name}.{n}", x)
    g.put(f"{name}.gy", gy)
    g.expect(f"{name}.y", y64, y32)
    for n, a, b in zip(input_names, g64, g32):
        g.expect(f"{name}.grad_{n}", a, b)


def make_ops(path):
    torch.manual_seed(1)
    g = Golden()
    N = 2
    # Conv2d at each configuration of the UNet (channels small, spatial sizes real):
    #   name              C_in C_out H   k s p    where in the UNet
    convs = [("conv3x3_s1_28_in", 1, 3, 28, 3, 1, 1),   # inc.0 (1 -> D)
             ("conv3x3_s1_28", 3, 4, 28, 3, 1, 1),       # inc.1, outc, up2 ConvBlock
             ("conv3x3_s1_14", 3, 4, 14, 3, 1, 1),       # down1 / up1 ConvBlocks
             ("conv3x3_s1_7", 3, 4, 7, 3, 1, 1),         # down2 ConvBlock
             ("conv3x3_s2_28", 3, 4, 28, 3, 2, 1),       # down1.0 (28 -> 14)
             ("conv3x3_s2_14", 3, 4, 14, 3, 2, 1),       # down2.0 (14 -> 7)
             ("conv3x3_s1_28_out", 4, 1, 28, 3, 1, 1)]   # out (D -> 1)
    for name, ci, co, H, k, s, p in convs:
        x, w, b = torch.randn(N, ci, H, H), torch.randn(co, ci, k, k) * 0.3, torch.randn(co)
        add_op(g, "conv2d." + name, lambda x, w, b, s=s, p=p: F.conv2d(x, w, b, s, p), ["x", "weight", "bias"],
               [x, w, b])
    # ConvTranspose2d: UpConv 4/2/1 at 7 -> 14 and 14 -> 28, Unflatten 7/7/0 at 1 -> 7.
    tconvs = [("convT4_s2_7", 4, 3, 7, 4, 2, 1),      # up1.0
              ("convT4_s2_14", 4, 3, 14, 4, 2, 1),    # up2.0
              ("convT7_s7_1", 4, 4, 1, 7, 7, 0)]      # unflat.0
    for name, ci, co, H, k, s, p in tconvs:
        x, w, b = torch.randn(N, ci, H, H), torch.randn(ci, co, k, k) * 0.3, torch.randn(co)
        add_op(g, "conv_transpose2d." + name, lambda x, w, b, s=s, p=p: F.conv_transpose2d(x, w, b, s, p),
               ["x", "weight", "bias"], [x, w, b])
    # BatchNorm2d in training mode: output, gradients, and the running stats it updates.
    for H in (28, 7):
        C = 3
        x = torch.randn(4, C, H, H) * 2 + 0.5
        w, b = torch.rand(C) + 0.5, torch.randn(C)
        rm, rv = torch.randn(C) * 0.1, torch.rand(C) + 0.5
        name = f"batch_norm_train.{H}"
        g.put(f"{name}.running_mean_before", rm)
        g.put(f"{name}.running_var_before", rv)
        stats = {}

        def bn_train(x, w, b, rm=rm, rv=rv):
            m, v = rm.to(x.dtype).clone(), rv.to(x.dtype).clone()
            y = F.batch_norm(x, m, v, w, b, training=True, momentum=0.1, eps=1e-5)
            stats[x.dtype] = (m, v)
            return y

        add_op(g, name, bn_train, ["x", "weight", "bias"], [x, w, b])
        g.expect(f"{name}.running_mean_after", stats[torch.float64][0], stats[torch.float32][0])
        g.expect(f"{name}.running_var_after", stats[torch.float64][1], stats[torch.float32][1])
    # BatchNorm2d in eval mode: normalised by the running stats.
    C = 3
    x, w, b = torch.randn(2, C, 14, 14), torch.rand(C) + 0.5, torch.randn(C)
    rm, rv = torch.randn(C) * 0.3, torch.rand(C) + 0.5
    g.put("batch_norm_eval.running_mean", rm)
    g.put("batch_norm_eval.running_var", rv)
    add_op(g, "batch_norm_eval",
           lambda x, w, b: F.batch_norm(x, rm.to(x.dtype), rv.to(x.dtype), w, b, training=False, eps=1e-5),
           ["x", "weight", "bias"], [x, w, b])
    # GELU (exact erf form), over a range that covers its curved part and both tails.
    add_op(g, "gelu", F.gelu, ["x"], [torch.linspace(-6, 6, 2 * 3 * 7 * 7).reshape(2, 3, 7, 7) + 0.01])
    add_op(g, "avg_pool2d", lambda x: F.avg_pool2d(x, 7), ["x"], [torch.randn(2, 3, 7, 7)])
    for name, fi, fo in (("fc_time", 1, 8), ("fc_class", 10, 8), ("fc_hidden", 8, 8)):
        add_op(g, "linear." + name, F.linear, ["x", "weight", "bias"],
               [torch.rand(4, fi), torch.randn(fo, fi) * 0.5, torch.randn(fo)])
    add_op(g, "concat", lambda a, b: torch.cat([a, b], 1), ["a", "b"],
           [torch.randn(2, 3, 7, 7), torch.randn(2, 2, 7, 7)])
    # Broadcasting of the conditioning: [N, C, 1, 1] against [N, C, H, W], both orders.
    u, s = torch.randn(2, 4, 7, 7), torch.randn(2, 4, 1, 1)
    add_op(g, "add_broadcast", lambda u, s: u + s, ["a", "b"], [u, s])
    add_op(g, "mul_broadcast", lambda s, u: s * u, ["a", "b"], [s, u])
    # mse_loss: a scalar output; gy is a scalar too.
    add_op(g, "mse_loss", F.mse_loss, ["pred", "target"], [torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)])
    return g.save(path, {"generator": "tools/parity/make_golden.py", "torch": torch.__version__})


# --- The UNets ---------------------------------------------------------------------------
def make_batch(mode, schedule, gen):
    """A training batch of the mode: x0 in [0, 1] (smooth blobs, image-like), eps,
    t in 1..T (I64), c one-hot with the last row dropped (zeros)."""
    x0 = torch.rand(BATCH, 1, 7, 7, generator=gen)
    x0 = F.interpolate(x0, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    eps = torch.randn(BATCH, 1, 28, 28, generator=gen)
    t = torch.randint(1, schedule.num_steps + 1, (BATCH,), generator=gen)
    labels = torch.randint(0, 10, (BATCH,), generator=gen)
    c = F.one_hot(labels, 10).float()
    c[-1] = 0.0  # classifier-free guidance: one example trained unconditionally
    return {"x0": x0, "eps": eps, "t": t, "c": c}


def model_loss(model, mode, schedule, batch, dtype):
    """Forward + loss of the mode on `batch` at `dtype` -> (prediction, loss)."""
    x0, eps = batch["x0"].to(dtype), batch["eps"].to(dtype)
    if mode == "none":  # Part 1: denoise z = x0 + sigma eps back to x0
        pred = model(x0 + ref.DENOISER_SIGMA * eps)
        return pred, F.mse_loss(pred, x0)
    xt = schedule.add_noise(x0, eps, batch["t"]).to(dtype)
    tt = schedule.time_input(batch["t"]).to(dtype)  # t / T rounded to float32, as the engine feeds it
    pred = model(xt, tt) if mode == "time" else model(xt, tt, batch["c"].to(dtype))
    return pred, F.mse_loss(pred, eps)


def make_unet(mode, path, ckpt_path, io_path, schedule, keys_lines):
    torch.manual_seed({"none": 10, "time": 20, "time_and_class": 30}[mode])
    gen = torch.Generator().manual_seed(100 + MODES.index(mode))
    m32 = ref.UNet(HIDDEN, mode)
    m64 = copy.deepcopy(m32).double()
    keys_lines.append(f"# mode {mode}, D = {HIDDEN}")
    for k, v in m32.state_dict().items():
        keys_lines.append(f"{k} {'I64' if v.dtype == torch.int64 else 'F32'} {list(v.shape)}")

    g = Golden()
    for k, v in m32.state_dict().items():
        g.put("init." + k, v)
    batch = make_batch(mode, schedule, gen)
    for k, v in batch.items():
        g.put("batch." + k, v)
    if mode != "none":
        g.expect("batch.x_t", schedule.add_noise(batch["x0"].double(), batch["eps"].double(), batch["t"]),
                 schedule.add_noise(batch["x0"], batch["eps"], batch["t"]).float())
        g.put("batch.t_input", schedule.time_input(batch["t"]))

    # One training step at both precisions: forward, loss, backward, Adam.
    results = {}
    for dtype, m in ((torch.float64, m64), (torch.float32, m32)):
        m.train()
        opt = torch.optim.Adam(m.parameters(), lr=LR)
        pred, loss = model_loss(m, mode, schedule, batch, dtype)
        opt.zero_grad()
        loss.backward()
        grads = {k: p.grad.clone() for k, p in m.named_parameters()}
        opt.step()
        results[dtype] = (pred, loss, grads, copy.deepcopy(m.state_dict()), opt)
    r64, r32 = results[torch.float64], results[torch.float32]
    g.expect("out", r64[0], r32[0])
    g.expect("loss", r64[1].reshape(()), r32[1].reshape(()))
    for k in r64[2]:
        g.expect("grad." + k, r64[2][k], r32[2][k])
    params = dict(m32.named_parameters())
    for k in r64[3]:
        if k in params:
            g.expect("adam1." + k, r64[3][k], r32[3][k])
        elif r64[3][k].is_floating_point():
            g.expect("after." + k, r64[3][k], r32[3][k])
        else:
            g.put("after." + k, r64[3][k])

    # The trajectory: TRAJECTORY_STEPS training steps of a fresh model loaded
    # from "init" with a fresh Adam, one stored batch (images, noise, t, c) per step.
    losses = {}
    traj_batches = [make_batch(mode, schedule, gen) for _ in range(TRAJECTORY_STEPS)]
    for i, b in enumerate(traj_batches):
        for k, v in b.items():
            g.put(f"traj.{i}.{k}", v)
        if mode != "none":  # the network's inputs, as float32 (the C++ test feeds these)
            g.put(f"traj.{i}.x_t", schedule.add_noise(b["x0"], b["eps"], b["t"]))
            g.put(f"traj.{i}.t_input", schedule.time_input(b["t"]))
    final = {}
    for dtype in (torch.float64, torch.float32):
        m = ref.UNet(HIDDEN, mode)
        m.load_state_dict({k[5:]: v for k, v in g.tensors.items() if k.startswith("init.")}, strict=True)
        m = m.to(dtype)
        m.train()
        opt = torch.optim.Adam(m.parameters(), lr=LR)
        ls = []
        for b in traj_batches:
            _, loss = model_loss(m, mode, schedule, b, dtype)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ls.append(loss.detach())
        losses[dtype] = torch.stack(ls)
        final[dtype] = m
    g.expect("traj.losses", losses[torch.float64], losses[torch.float32])
    size = g.save(path, {"mode": mode, "hidden": str(HIDDEN), "lr": str(LR), "generator": "tools/parity/make_golden.py"})

    # A checkpoint as PyTorch writes it (the float32 model after the trajectory:
    # non-trivial running stats, num_batches_tracked = 5), and its eval output.
    trained = final[torch.float32]
    ckpt = OrderedDict((k, v.clone()) for k, v in trained.state_dict().items())
    ref.save_safetensors(ckpt_path, ckpt, {"format": "pt", "mode": mode, "hidden": str(HIDDEN)})
    io = Golden()
    b = make_batch(mode, schedule, gen)
    for k, v in b.items():
        io.put("batch." + k, v)
    m64 = copy.deepcopy(trained).double().eval()
    trained.eval()
    with torch.no_grad():
        x_in = b["x0"] + ref.DENOISER_SIGMA * b["eps"]
        tt = schedule.time_input(b["t"])
        args64 = [x_in.double()] + ([tt.double()] if mode != "none" else []) + (
            [b["c"].double()] if mode == "time_and_class" else [])
        args32 = [x_in] + ([tt] if mode != "none" else []) + ([b["c"]] if mode == "time_and_class" else [])
        io.put("input.x", x_in)
        if mode != "none":
            io.put("input.t", tt)
        if mode == "time_and_class":
            io.put("input.c", b["c"])
        io.expect("eval_out", m64(*args64), trained(*args32))
    size += io.save(io_path, {"mode": mode})
    return size + os.path.getsize(ckpt_path)


def make_ddpm(path, schedule):
    """The schedule, and the last SAMPLER_STEPS reverse steps of the sampler
    from a stored x_t with stored noise, for the time model and the class model
    (guidance 5): exercises ddpm_predict_noise + ddpm_reverse_step."""
    g = Golden()
    T = schedule.num_steps
    g.put("schedule.betas", schedule.betas)
    g.put("schedule.alphas", schedule.alphas)
    g.put("schedule.alpha_bars", schedule.alpha_bars)
    for mode, seed in (("time", 40), ("time_and_class", 50)):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        m32 = ref.UNet(HIDDEN, mode)
        # A few training-mode forwards give the BatchNorms non-trivial running stats.
        with torch.no_grad():
            for _ in range(3):
                b = make_batch(mode, schedule, gen)
                m32(b["x0"], schedule.time_input(b["t"]), *([b["c"]] if mode == "time_and_class" else []))
        for k, v in m32.state_dict().items():
            g.put(f"{mode}.state.{k}", v)
        n = 2
        x_start = torch.randn(n, 1, 28, 28, generator=gen)
        noises = [torch.randn(n, 1, 28, 28, generator=gen) for _ in range(SAMPLER_STEPS - 1)]
        labels = torch.tensor([3, 7])
        c = F.one_hot(labels, 10).float() if mode == "time_and_class" else None
        g.put(f"{mode}.x_start", x_start)
        g.put(f"{mode}.noise", torch.stack(noises))  # [steps - 1, n, 1, 28, 28], z for t = 20 .. 2
        if c is not None:
            g.put(f"{mode}.labels", labels)
        gamma = 5.0 if mode == "time_and_class" else None
        outs = {}
        for dtype in (torch.float64, torch.float32):
            m = copy.deepcopy(m32).to(dtype).eval()
            outs[dtype] = ref.ddpm_sample(m, schedule, x_start.to(dtype), [z.to(dtype) for z in noises],
                                          None if c is None else c.to(dtype), gamma, first_step=SAMPLER_STEPS)
        g.expect(f"{mode}.x_end", outs[torch.float64], outs[torch.float32])
    return g.save(path, {"first_step": str(SAMPLER_STEPS), "guidance_scale": "5.0", "T": str(T)})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join("tests", "data", "golden"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    total = make_ops(os.path.join(args.out, "ops.safetensors"))
    schedule = ref.DDPMSchedule()
    keys_lines = ["# The PyTorch reference's state_dict(): key dtype shape, in order (tools/parity/make_golden.py)"]
    for mode in MODES:
        total += make_unet(mode, os.path.join(args.out, f"unet_{mode}.safetensors"),
                           os.path.join(args.out, f"torch_checkpoint_{mode}.safetensors"),
                           os.path.join(args.out, f"torch_checkpoint_{mode}_io.safetensors"), schedule, keys_lines)
    total += make_ddpm(os.path.join(args.out, "ddpm.safetensors"), schedule)
    with open(os.path.join(args.out, "unet_state_dict_keys.txt"), "w") as f:
        f.write("\n".join(keys_lines) + "\n")
    print(f"wrote {args.out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
