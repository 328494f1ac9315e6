"""Deepen the update transformer of trained weights without changing what they compute.

    python train/grow_updateformer.py train/artifacts/ship_small_aj_soup7.safetensors \\
        train/artifacts/ship_small_aj_soup7_deep4.safetensors --time-depth 4 --space-depth 4

The update transformer runs ``time_depth`` time blocks, each followed by a space block when its index is a multiple
of ``time_depth // space_depth``. Every block is pre-norm residual, ``x + attn(LN(x))`` then ``x + mlp(LN(x))``, so a
block whose attention output projection and second MLP layer are zero is the identity. The grown file keeps the old
blocks at the front and appends new ones with those two layers zeroed (their other layers take the usual Xavier
init, seeded by ``--seed``), so the deeper model tracks exactly as the input did, and training can then use the extra
depth. The old schedule must be the front of the new one: with ``every = time_depth // space_depth`` unchanged, or
both depths grown from a 1:1 schedule to another 1:1 schedule.

The output is a safetensors file (``--dtype``, float16 by default, written atomically) whose metadata records the
new depths as ``model_overrides``: a config that trains from it (``init_weights``) needs the same ``model_overrides``,
and ``train/select_checkpoint.py`` and ``train/calibrate_visibility.py`` build the deeper model from that metadata.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling script calibrate_visibility

from calibrate_visibility import read_weights, recorded_overrides  # noqa: E402
from cotracker_fast.models.checkpoint import save_safetensors  # noqa: E402
from cotracker_fast.models.cotracker import CoTracker  # noqa: E402
from cotracker_fast.models.registry import config_with_overrides  # noqa: E402
from cotracker_fast.models.updateformer import block_order  # noqa: E402

#: the layers whose zero weights and biases make a pre-norm residual block the identity
IDENTITY_LAYERS = ("attn.proj", "mlp.fc2")


def grow_state_dict(state: dict, model_name: str, overrides: dict, time_depth: int, space_depth: int,
                    seed: int = 0) -> dict:
    """``state`` (weights of ``model_name`` with ``overrides``) as weights of the same model with ``time_depth`` time
    and ``space_depth`` space blocks, the new blocks appended as identities. Raises ``ValueError`` when the depths
    shrink or the old block order is not the front of the new one."""
    old_cfg = config_with_overrides(model_name, overrides)
    old = block_order(old_cfg.time_depth, old_cfg.space_depth)
    new = block_order(time_depth, space_depth)
    if time_depth < old_cfg.time_depth or space_depth < old_cfg.space_depth:
        raise ValueError(f"grow_state_dict: depths can only grow, from time {old_cfg.time_depth} / space "
                         f"{old_cfg.space_depth}, got {time_depth} / {space_depth}")
    if new[:len(old)] != old:
        raise ValueError(f"grow_state_dict: the block order of time {old_cfg.time_depth} / space "
                         f"{old_cfg.space_depth} is not the front of that of time {time_depth} / space {space_depth}")
    torch.manual_seed(seed)
    grown = CoTracker(config_with_overrides(model_name, {**overrides, "time_depth": time_depth,
                                                         "space_depth": space_depth}))
    out = {k: v.detach().clone() for k, v in grown.state_dict().items()}
    missing = [k for k in state if k not in out]
    if missing:
        raise ValueError(f"grow_state_dict: the input holds keys the grown model lacks: {missing[:3]}")
    for key, value in state.items():
        if out[key].shape != value.shape:
            raise ValueError(f"{key}: shape {tuple(value.shape)} in the input, {tuple(out[key].shape)} in the model")
        out[key] = value.clone()
    for kind, i in new[len(old):]:
        for layer in IDENTITY_LAYERS:
            for part in ("weight", "bias"):
                out[f"updateformer.{kind}_blocks.{i}.{layer}.{part}"].zero_()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="weights file or training checkpoint (.pt)")
    p.add_argument("output", help="the deeper weights (.safetensors)")
    p.add_argument("--time-depth", type=int, required=True, help="time blocks of the grown transformer")
    p.add_argument("--space-depth", type=int, required=True, help="space blocks of the grown transformer")
    p.add_argument("--seed", type=int, default=0, help="seed of the new blocks' non-zero layers")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    args = p.parse_args(argv)
    if not args.output.endswith(".safetensors"):
        p.error(f"output must be a .safetensors file, got {args.output!r}")
    if args.space_depth < 1 or args.time_depth % args.space_depth:
        p.error(f"--time-depth must be a positive multiple of --space-depth, got {args.time_depth} and "
                f"{args.space_depth}")
    state, meta = read_weights(args.weights)
    name = meta.get("model_name") or ""
    if not name:
        raise SystemExit(f"grow_updateformer: {args.weights} records no model_name; export it with "
                         "train/export_weights.py first")
    overrides = recorded_overrides(meta) or {}
    try:
        grown = grow_state_dict(state, name, overrides, args.time_depth, args.space_depth, args.seed)
    except ValueError as e:
        raise SystemExit(str(e))
    dtype = getattr(torch, args.dtype)
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in grown.items()}
    new_overrides = {**overrides, "time_depth": args.time_depth, "space_depth": args.space_depth}
    save_safetensors(sd, args.output, metadata={
        "model_name": name, "model_overrides": json.dumps(new_overrides, sort_keys=True),
        "grown_from": args.weights})
    print(f"{args.output}: {name} with model_overrides {new_overrides}, {args.dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
