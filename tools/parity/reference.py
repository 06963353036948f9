"""The PyTorch reference of the diffusion assignment: the peer the engine is
measured against, never part of the engine.

It holds, in plain PyTorch (written for Debian's torch 1.13, CPU, run with
/usr/bin/python3):
  * the three UNets (unconditional, time-conditioned, class-conditioned) with
    exactly the module tree of models/unet.h, so state_dict() keys and order
    are the engine's ("inc.0.0.weight", "down1.1.0.1.running_var", ...);
  * the DDPM schedule (betas linear in [1e-4, 0.02], T = 300), the two
    training losses (one-step denoiser, DDPM noise prediction) and the DDPM
    sampler with optional classifier-free guidance (models/ddpm.h);
  * a minimal safetensors reader/writer (torch 1.13 has no safetensors
    package; the format is 8 bytes of header length, a JSON header, the raw
    little-endian bytes).

Shapes: x [N, 1, 28, 28]; t [N, 1] = timestep / T in [0, 1]; c [N, 10] one-hot
(a zero row = unconditional).
"""
import json
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_SIZE = 28
NUM_CLASSES = 10


# --- The blocks of models/unet.h ------------------------------------------------
def make_conv(cin, cout):  # Conv(in, out): 3x3, stride 1, padding 1
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.GELU())


def make_down_conv(cin, cout):  # halves H and W
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.GELU())


def make_up_conv(cin, cout):  # doubles H and W
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.GELU())


def make_flatten():  # 7x7 -> 1x1
    return nn.Sequential(nn.AvgPool2d(7), nn.GELU())


def make_unflatten(c):  # 1x1 -> 7x7
    return nn.Sequential(nn.ConvTranspose2d(c, c, 7, 7, 0), nn.BatchNorm2d(c), nn.GELU())


def make_conv_block(cin, cout):
    return nn.Sequential(make_conv(cin, cout), make_conv(cout, cout))


def make_down_block(cin, cout):
    return nn.Sequential(make_down_conv(cin, cout), make_conv_block(cout, cout))


def make_up_block(cin, cout):
    return nn.Sequential(make_up_conv(cin, cout), make_conv_block(cout, cout))


def make_fc_block(cin, cout):
    return nn.Sequential(nn.Linear(cin, cout), nn.GELU(), nn.Linear(cout, cout))


CONDITIONINGS = ("none", "time", "time_and_class")


class UNet(nn.Module):
    """models/unet.h's UNet; registration order = the engine's key order."""

    def __init__(self, hidden, conditioning="none"):
        super().__init__()
        assert conditioning in CONDITIONINGS, conditioning
        D = hidden
        self.hidden, self.conditioning = hidden, conditioning
        self.inc = make_conv_block(1, D)
        self.down1 = make_down_block(D, D)
        self.down2 = make_down_block(D, 2 * D)
        self.flat = make_flatten()
        self.unflat = make_unflatten(2 * D)
        self.up1 = make_up_block(4 * D, D)
        self.up2 = make_up_block(2 * D, D)
        self.outc = make_conv_block(2 * D, D)
        self.out = nn.Conv2d(D, 1, 3, 1, 1)
        if conditioning != "none":
            self.fc1_t = make_fc_block(1, 2 * D)
            self.fc2_t = make_fc_block(1, D)
        if conditioning == "time_and_class":
            self.fc1_c = make_fc_block(NUM_CLASSES, 2 * D)
            self.fc2_c = make_fc_block(NUM_CLASSES, D)

    def forward(self, x, t=None, c=None):
        N, D = x.shape[0], self.hidden
        e1 = self.inc(x)            # [N, D, 28, 28]
        e2 = self.down1(e1)         # [N, D, 14, 14]
        e3 = self.down2(e2)         # [N, 2D, 7, 7]
        u = self.unflat(self.flat(e3))  # [N, 2D, 7, 7]
        if self.conditioning != "none":
            t1 = self.fc1_t(t).view(N, 2 * D, 1, 1)
            if self.conditioning == "time_and_class":
                u = self.fc1_c(c).view(N, 2 * D, 1, 1) * u + t1
            else:
                u = u + t1
        d2 = self.up1(torch.cat([e3, u], 1))  # [N, D, 14, 14]
        if self.conditioning != "none":
            t2 = self.fc2_t(t).view(N, D, 1, 1)
            if self.conditioning == "time_and_class":
                d2 = self.fc2_c(c).view(N, D, 1, 1) * d2 + t2
            else:
                d2 = d2 + t2
        d1 = self.up2(torch.cat([e2, d2], 1))  # [N, D, 28, 28]
        return self.out(self.outc(torch.cat([e1, d1], 1)))


# --- Losses -------------------------------------------------------------------------
DENOISER_SIGMA = 0.5  # Part 1: z = x + sigma * eps, the model predicts x from z


def denoiser_loss(model, x, eps, sigma=DENOISER_SIGMA):
    """Part 1: ||model(x + sigma eps) - x||^2, averaged over all elements."""
    return F.mse_loss(model(x + sigma * eps), x)


# --- The DDPM schedule and sampler (mirrors models/ddpm.h) ---------------------------
class DDPMSchedule:
    """models/ddpm.h's DdpmSchedule. T noising steps, t = 1..T:
        beta_t = linspace(beta_start, beta_end, T)[t - 1],  alpha_t = 1 - beta_t,
        alpha_bar_t = alpha_1 ... alpha_t,
    held in float64 as arrays of T + 1 entries whose entry 0 means "no noise"
    (beta_0 = 0, alpha_0 = alpha_bar_0 = 1). q(x_t | x_0) = N(sqrt(alpha_bar_t)
    x_0, (1 - alpha_bar_t) I). The network sees the timestep as t / T."""

    def __init__(self, num_steps=300, beta_start=1e-4, beta_end=0.02):
        self.num_steps = num_steps
        betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
        self.betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])
        self.alphas = 1.0 - self.betas
        self.alpha_bars = torch.cumprod(self.alphas, 0)

    def add_noise(self, x0, eps, t):
        """x0, eps [N, 1, 28, 28]; t int64 [N] in 1..T -> x_t, in x0's dtype."""
        ab = self.alpha_bars[t.cpu()].view(-1, 1, 1, 1)
        return ab.sqrt().to(x0) * x0 + (1.0 - ab).sqrt().to(x0) * eps

    def time_input(self, t, dtype=torch.float32):
        """int64 [N] -> the network's input t / T, [N, 1]."""
        return (t.double() / self.num_steps).view(-1, 1).to(dtype)


def ddpm_loss(model, schedule, x0, eps, t, c=None):
    """Part 2: ||eps_theta(x_t, t/T [, c]) - eps||^2 averaged over all elements."""
    xt = schedule.add_noise(x0, eps, t)
    tt = schedule.time_input(t, x0.dtype)
    pred = model(xt, tt) if c is None else model(xt, tt, c)
    return F.mse_loss(pred, eps)


def ddpm_predict_noise(model, schedule, x, t, c=None, guidance_scale=None):
    """eps_theta(x_t, t/T [, c]); with guidance, eps_u + g (eps_c - eps_u) from ONE
    forward of [x; x] with conditions [c; 0] (2N examples), as models/ddpm.h."""
    N = x.shape[0]
    tt = torch.full((N, 1), t / schedule.num_steps, dtype=torch.float64).to(x)
    if model.conditioning == "time":
        return model(x, tt)
    if guidance_scale is None:
        return model(x, tt, c)
    both = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([c, torch.zeros_like(c)]))
    eps_c, eps_u = both[:N], both[N:]
    return eps_u + guidance_scale * (eps_c - eps_u)


def ddpm_reverse_step(schedule, x, eps, t, z):
    """x_t -> x_{t-1} (Ho et al. eq. 7 through x0_hat), coefficients in float64:
        x0_hat  = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
        x_{t-1} = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x0_hat
                + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t + sqrt(beta_t) z."""
    ab, ab_prev = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[t - 1])
    beta, alpha = float(schedule.betas[t]), float(schedule.alphas[t])
    x0_hat = (x - (1.0 - ab) ** 0.5 * eps) / ab ** 0.5
    x_prev = (ab_prev ** 0.5 * beta / (1.0 - ab)) * x0_hat + (alpha ** 0.5 * (1.0 - ab_prev) / (1.0 - ab)) * x
    if z is not None:
        x_prev = x_prev + beta ** 0.5 * z
    return x_prev


@torch.no_grad()
def ddpm_sample(model, schedule, x_start, noises, c=None, guidance_scale=None, first_step=None):
    """The DDPM ancestral sampler from t = first_step (default T; x_start = x_T ~
    N(0, I)) down to t = 1. noises[k] is the z of the k-th step (t = first - k),
    first - 1 of them: the last step (t = 1) adds no noise. The model should be
    in eval mode (BatchNorm on running stats)."""
    first = schedule.num_steps if first_step is None else first_step
    x = x_start
    for k, t in enumerate(range(first, 0, -1)):
        eps = ddpm_predict_noise(model, schedule, x, t, c, guidance_scale)
        x = ddpm_reverse_step(schedule, x, eps, t, noises[k] if t > 1 else None)
    return x


# --- safetensors, by hand -------------------------------------------------------------
_DTYPES = {torch.float32: "F32", torch.int64: "I64"}
_TORCH_DTYPES = {"F32": torch.float32, "I64": torch.int64}


def save_safetensors(path, tensors, metadata=None):
    """tensors: an ordered dict name -> tensor (F32 or I64). Written in order."""
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # pad the header so the data is 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for chunk in chunks:
            f.write(chunk)


def load_safetensors(path):
    """-> (dict name -> tensor in file order, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    body = raw[8 + n:]
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = info["data_offsets"]
        dtype = _TORCH_DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(body[b:e]), dtype=dtype) if e > b else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out, metadata
