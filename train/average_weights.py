"""Average the weights of several checkpoints of one training trajectory into one fp16 safetensors file.

    python train/average_weights.py runs/ship_small_m/step_0002000.pt runs/ship_small_m/last.pt \\
        --out runs/ship_small_m_avg.safetensors

Checkpoints taken along one run (or along runs that continue each other) lie in one basin of the loss, and their
uniform average usually scores at least as well as the best of them (stochastic weight averaging, "model soups").
Every floating-point tensor is averaged in float32; integer tensors (none in this model) must agree and are copied.
All inputs must hold the same keys and shapes. The result is written atomically; score it with
``train/select_checkpoint.py`` like any other candidate, so the choice stays on validation clips.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling script calibrate_visibility

from calibrate_visibility import read_weights, recorded_overrides  # noqa: E402
from cotracker_fast.models.checkpoint import save_safetensors  # noqa: E402


def average_state_dicts(state_dicts: list) -> dict:
    """The uniform average of ``state_dicts`` (float32 for floating tensors); raises on any mismatch."""
    if not state_dicts:
        raise ValueError("average_state_dicts: need at least one state dict")
    first = state_dicts[0]
    out = {}
    for i, sd in enumerate(state_dicts[1:], start=1):
        if sd.keys() != first.keys():
            missing, extra = sorted(first.keys() - sd.keys()), sorted(sd.keys() - first.keys())
            raise ValueError(f"state dict {i} has different keys: missing {missing[:3]}, extra {extra[:3]}")
    for key, ref in first.items():
        tensors = [sd[key] for sd in state_dicts]
        for i, t in enumerate(tensors):
            if t.shape != ref.shape:
                raise ValueError(f"{key}: state dict {i} has shape {tuple(t.shape)}, expected {tuple(ref.shape)}")
        if ref.is_floating_point():
            out[key] = torch.stack([t.float() for t in tensors]).mean(0)
        else:
            if any(not torch.equal(t, ref) for t in tensors):
                raise ValueError(f"{key}: integer tensor differs between state dicts; cannot average it")
            out[key] = ref.clone()
    return out


def _overrides(meta: dict) -> str:
    """The model overrides a weights file was trained with, as canonical JSON (``"{}"`` for the registered variant)."""
    return json.dumps(recorded_overrides(meta) or {}, sort_keys=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="training checkpoints (.pt) or weights files of one model variant")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    args = p.parse_args(argv)
    if len(args.inputs) < 2:
        raise SystemExit("average_weights: give at least two inputs to average")
    loaded = [read_weights(path) for path in args.inputs]
    variants = {(meta.get("model_name", ""), _overrides(meta)) for _, meta in loaded}
    if len(variants) > 1:
        raise SystemExit(f"average_weights: the inputs are of different model variants (name, model_overrides): "
                         f"{sorted(variants)}")
    name, overrides = variants.pop()
    avg = average_state_dicts([sd for sd, _ in loaded])
    dtype = getattr(torch, args.dtype)
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in avg.items()}
    metadata = {"averaged_from": json.dumps(args.inputs)}
    if name:
        metadata["model_name"] = name
    if overrides != "{}":
        metadata["model_overrides"] = overrides
    save_safetensors(sd, args.out, metadata=metadata)
    print(f"{args.out}: the average of {len(args.inputs)} checkpoints, {args.dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
