"""Engine -> PyTorch: loads a checkpoint the engine wrote into the PyTorch
reference with load_state_dict(strict=True) and compares the reference's
eval-mode output with the one the engine wrote beside it.

    /usr/bin/python3 tools/parity/check_engine_checkpoint.py \
        --checkpoint engine_checkpoint_time.safetensors \
        --io engine_checkpoint_time_io.safetensors --mode time --hidden 8

The io file holds input.x [N, 1, 28, 28], input.t [N, 1] (time models),
input.c [N, 10] (class model) and eval_out [N, 1, 28, 28], the engine's output.
Run by tests/parity/checkpoint_parity_test.cpp (skipped there when
/usr/bin/python3 cannot import torch). Exit status 0 when everything matches.

Checks:
  * the checkpoint's keys, in file order, are the reference's state_dict() keys
    in order, and load_state_dict(strict=True) accepts it (shapes included);
  * the engine's output is within tolerance of the reference's, computed in
    float64 from the same weights: tol = max(16 x PyTorch's own float32 error
    on this output, 1e-6 x max |output|), the rule of tests/parity/golden.h.
"""
import argparse
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--io", required=True)
    parser.add_argument("--mode", required=True, choices=ref.CONDITIONINGS)
    parser.add_argument("--hidden", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)

    state, _ = ref.load_safetensors(args.checkpoint)
    io, _ = ref.load_safetensors(args.io)
    model = ref.UNet(args.hidden, args.mode)
    expected_keys = list(model.state_dict().keys())
    if list(state.keys()) != expected_keys:
        missing = [k for k in expected_keys if k not in state]
        unexpected = [k for k in state if k not in expected_keys]
        print(f"FAIL: key order/set differs; missing {missing}, unexpected {unexpected}")
        return 1
    model.load_state_dict(state, strict=True)  # raises on any missing/unexpected key or shape
    model.eval()
    m64 = copy.deepcopy(model).double()
    args32 = [io["input.x"]]
    if args.mode != "none":
        args32.append(io["input.t"])
    if args.mode == "time_and_class":
        args32.append(io["input.c"])
    with torch.no_grad():
        out32 = model(*args32)
        out64 = m64(*[a.double() for a in args32])
    engine = io["eval_out"].double()
    torch_f32_err = (out32.double() - out64).abs().max().item()
    engine_err = (engine - out64).abs().max().item()
    tol = max(16 * torch_f32_err, 1e-6 * out64.abs().max().item())
    print(f"{args.mode}: {len(state)} tensors loaded strictly; engine max error {engine_err:.3e}, "
          f"PyTorch float32 error {torch_f32_err:.3e}, tolerance {tol:.3e}")
    if not engine_err <= tol:
        print("FAIL: the engine's output differs from the reference's")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
