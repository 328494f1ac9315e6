"""Convert ``cotracker_fast_small`` weights from the official flow embedding to the raw-flow input the variant uses.

    python train/drop_flow_sinusoids.py old.safetensors new.safetensors

The official flow embedding feeds the update transformer the raw window-relative flow ``(dx, dy)`` in feature cells
plus 32 sin/cos pairs per axis at ``31.25 k`` radians per cell (k = 0..31): all but k = 0 turn a shift of a
hundredth of a cell into an unrelated value, a pseudo-random function of the sub-cell position. A network trained as
briefly as the shipped one has not learned to ignore them, and its refinement amplifies a tiny change of its input
from one iteration to the next. ``cotracker_fast_small`` therefore reads only ``(dx, dy)`` (``flow_embed_dim=0``).

The conversion drops the sinusoid columns of ``updateformer.input_transform.weight`` and folds the two constant
columns (k = 0: ``cos 0 = 1``; ``sin 0 = 0`` contributes nothing) into its bias, so the converted network equals the
old one with the k >= 1 columns set to zero. Input: a ``.safetensors`` / ``.pth`` state dict or a training
checkpoint (``.pt`` with ``"model"``); output: float16 safetensors (the shipped format), written atomically.
"""
import argparse
import sys

import torch

from cotracker_fast.models.checkpoint import read_state_dict, save_safetensors
from cotracker_fast.models.registry import SHIPPED_MODEL, get_config
from cotracker_fast.training.trainer import load_checkpoint_state

OLD_FLOW_EMBED_DIM = 64  # sin/cos features per axis of the official embedding


def drop_flow_sinusoids(sd: dict, flow_embed_dim: int = OLD_FLOW_EMBED_DIM) -> dict:
    """A copy of ``sd`` whose input projection reads ``[dx, dy, rest]`` instead of ``[dx, dy, sinusoids, rest]``.

    Raises ValueError if ``sd``'s input projection does not have the sinusoid columns."""
    key_w, key_b = "updateformer.input_transform.weight", "updateformer.input_transform.bias"
    w, b = sd[key_w].double(), sd[key_b].double()
    new_in = get_config(SHIPPED_MODEL).input_dim
    if w.shape[1] != new_in + 2 * flow_embed_dim:
        raise ValueError(f"{key_w} has {w.shape[1]} input columns; a {SHIPPED_MODEL} state dict with the official "
                         f"flow embedding has {new_in + 2 * flow_embed_dim}")
    x0, y0 = 2, 2 + flow_embed_dim  # the first sinusoid column of each axis: sin(0 * dx), then cos(0 * dx)
    out = dict(sd)
    out[key_b] = (b + w[:, x0 + 1] + w[:, y0 + 1]).to(sd[key_b].dtype)
    out[key_w] = torch.cat([w[:, :2], w[:, 2 + 2 * flow_embed_dim :]], dim=1).to(sd[key_w].dtype)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="old-layout weights (.safetensors / .pth) or a training checkpoint (.pt)")
    p.add_argument("out", help="the .safetensors file to write")
    args = p.parse_args(argv)
    sd = load_checkpoint_state(args.src)["model"] if args.src.endswith(".pt") else read_state_dict(args.src)
    sd = drop_flow_sinusoids({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    save_safetensors(sd, args.out, metadata={"model_name": SHIPPED_MODEL, "converted_from": args.src})
    print(f"{args.out}: {SHIPPED_MODEL} with the raw-flow input")
    return 0


if __name__ == "__main__":
    sys.exit(main())
